"""The one quarterly partitioning shared by every partitioned asset.

It reaches one quarter past the last ended one (``end_offset=1``): at quarter-end Q the forward
forecast needs grpo_policy[Q+1], the policy trained on every target up to Q, while Q+1 is still
under way. That quarter's panel and walk-forward partitions stay empty until its data arrives.
"""

from collections.abc import Sequence

import dagster as dg

from cecl_pipeline.quarters import label, to_ordinal

FIRST_PARTITION = "1985-01-01"  # the earliest quarter in the public FRED charge-off history

quarterly = dg.TimeWindowPartitionsDefinition(start=FIRST_PARTITION, fmt="%Y-%m-%d", cron_schedule="0 0 1 1,4,7,10 *", end_offset=1)


def quarter_of(context: dg.AssetExecutionContext) -> str:
    """The run's partition as a label (``2019Q1``)."""
    return label(context.partition_key)


class NoPartitionError(ValueError):
    """A quarter the partitions do not have: before the first, or after the one under way."""


def check_partitions(quarters: Sequence[str]) -> None:
    """Refuse, in one line, quarters outside the partitions (the latest is the quarter under way)."""
    first, last = label(quarterly.get_first_partition_key()), label(quarterly.get_last_partition_key())
    for quarter in quarters:
        if to_ordinal(quarter) > to_ordinal(last):
            raise NoPartitionError(f"{quarter} has no partition yet: the partitions reach the quarter under way, {last}")
        if to_ordinal(quarter) < to_ordinal(first):
            raise NoPartitionError(f"{quarter} has no partition: the partitions start at {first}")
