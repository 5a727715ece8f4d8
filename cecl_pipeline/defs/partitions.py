"""The one quarterly partitioning shared by every partitioned asset."""

import dagster as dg

from cecl_pipeline.quarters import label

FIRST_PARTITION = "1985-01-01"  # the earliest quarter in the public FRED charge-off history

quarterly = dg.TimeWindowPartitionsDefinition(start=FIRST_PARTITION, fmt="%Y-%m-%d", cron_schedule="0 0 1 1,4,7,10 *")


def quarter_of(context: dg.AssetExecutionContext) -> str:
    """The run's partition as a label (``2019Q1``)."""
    return label(context.partition_key)
