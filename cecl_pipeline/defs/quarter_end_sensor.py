"""The quarter-end sensor: once the newest quarter's panel is accepted, its forward forecast and allowance, with no person involved.

For the newest quarter Q whose nco_panel passed its blocking checks, it requests, one at a time and
each once its input is newer than its own last materialization:

1. ``train_policy`` for Q+1 (grpo_policy[Q+1] trains on every target up to Q), once nco_prompts[Q]
   is built from that panel;
2. ``quarter_end`` for Q (forward_forecasts[Q], then cecl_allowance[Q] when raw/portfolio/<Q>.csv
   exists, then forward_scores);
3. ``cecl_allowance[Q]`` alone, when the portfolio, overlay or scenario-weights file changed since it was booked.

It reads state, not events: each tick looks at what is materialized, so a missed tick or a daemon
restart loses nothing, and run keys make every step run once per input version. A failed step is not
retried on its own; it runs again when its input changes or a person re-runs it. While any run or
backfill that writes one of these assets is in flight it waits, so a backfill over history books only
its newest quarter, once.
"""

import dagster as dg
from dagster._core.execution.backfill import BulkActionStatus  # not exported at the top level in 1.13

from cecl_pipeline.defs.automation_config import automation_run_config, job_assets
from cecl_pipeline.defs.booking_files import booking_inputs
from cecl_pipeline.defs.jobs import ingest_quarter, quarter_end, quarterly_retrain, train_policy
from cecl_pipeline.defs.resources import DataPaths
from cecl_pipeline.quarters import label, shift, to_partition_key
from cecl_pipeline.settings import DataLayout

NCO_PANEL, NCO_PROMPTS, GRPO_POLICY, FORWARD, ALLOWANCE = (
    dg.AssetKey(name) for name in ("nco_panel", "nco_prompts", "grpo_policy", "forward_forecasts", "cecl_allowance"))
BOOKED_QUARTER_TAG = "cecl/booked_quarter"
CHAIN = {NCO_PANEL, NCO_PROMPTS, GRPO_POLICY, FORWARD, ALLOWANCE}
CHAIN_JOBS = {ingest_quarter.name, quarterly_retrain.name, train_policy.name, quarter_end.name}
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
NEWEST_PANELS_LOOKED_AT = 8  # a run of rejected newest quarters longer than this is for a person, not for the sensor


@dg.sensor(
    jobs=[train_policy, quarter_end],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="When the newest quarter Q's nco_panel is accepted: grpo_policy[Q+1], then forward_forecasts[Q] and cecl_allowance[Q] "
                "(the allowance once raw/portfolio/<Q>.csv exists, again when it or the overlays change).",
)
def quarter_end_sensor(context: dg.SensorEvaluationContext, paths: DataPaths):
    step = next_step(context.instance, paths.layout())
    if isinstance(step, str):
        return dg.SkipReason(step)
    context.log.info(f"requesting {step.job_name} for {step.tags[BOOKED_QUARTER_TAG]} (run key {step.run_key})")
    return step


def next_step(instance: dg.DagsterInstance, layout: DataLayout) -> dg.RunRequest | str:
    """The one run the newest accepted quarter needs next, or why there is none."""
    if busy := chain_in_flight(instance):
        return f"waiting for runs that write the chain's assets to end: {busy}"
    newest = newest_accepted_panel(instance)
    if newest is None:
        return "no accepted nco_panel yet"
    origin, panel = newest
    prompts = latest(instance, NCO_PROMPTS, origin)
    if prompts is None or prompts.storage_id < panel.storage_id:
        return f"nco_panel {origin} is accepted; waiting for nco_prompts {origin}, built from it (ingest_quarter builds both)"
    serving = shift(origin, 1)
    policy = latest(instance, GRPO_POLICY, serving)
    if policy is None or policy.storage_id < prompts.storage_id:
        return _request(train_policy, serving, origin, f"grpo_policy:{serving}:{prompts.storage_id}")
    forward = latest(instance, FORWARD, origin)
    portfolio = layout.portfolio_csv(origin)
    if forward is None or forward.storage_id < policy.storage_id:
        selection = job_assets(quarter_end) if portfolio.is_file() else [k for k in job_assets(quarter_end) if k != ALLOWANCE]
        return _request(quarter_end, origin, origin, f"quarter_end:{origin}:{policy.storage_id}", selection)
    if not portfolio.is_file():
        return f"forward_forecasts {origin} is up to date; cecl_allowance {origin} waits for its portfolio at {portfolio}"
    allowance = latest(instance, ALLOWANCE, origin)
    inputs = booking_inputs(layout, origin)
    if allowance is None or allowance.storage_id < forward.storage_id or booked_on(allowance) != inputs:
        versions = ":".join(digest[:16] for digest in inputs.values())
        return _request(quarter_end, origin, origin, f"cecl_allowance:{origin}:{forward.storage_id}:{versions}", [ALLOWANCE])
    return f"{origin} is booked: cecl_allowance {origin} is newer than its forecast, portfolio and overlays"


def _request(job, quarter: str, origin: str, run_key: str, selection: list[dg.AssetKey] | None = None) -> dg.RunRequest:
    assets = selection or job_assets(job)
    return dg.RunRequest(run_key=run_key, job_name=job.name, partition_key=to_partition_key(quarter), run_config=automation_run_config(assets),
                         asset_selection=selection, tags={BOOKED_QUARTER_TAG: origin})


def latest(instance: dg.DagsterInstance, key: dg.AssetKey, quarter: str) -> dg.EventLogRecord | None:
    """The newest materialization of ``key`` for ``quarter``."""
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key, asset_partitions=[to_partition_key(quarter)]), limit=1)
    return records.records[0] if records.records else None


def newest_accepted_panel(instance: dg.DagsterInstance) -> tuple[str, dg.EventLogRecord] | None:
    """The newest quarter with an nco_panel that passed its blocking checks, and that materialization.

    A newer quarter whose drop file was rejected keeps its accepted file (if it had one) and is
    looked at through its newest accepted materialization; one never accepted is passed over.
    """
    for key in sorted(instance.get_materialized_partitions(NCO_PANEL), reverse=True)[:NEWEST_PANELS_LOOKED_AT]:
        records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=NCO_PANEL, asset_partitions=[key]), limit=20).records
        accepted = [r for r in records if _metadata_text(r, "status").startswith("accepted")]
        if accepted:
            return label(key), accepted[0]
    return None


def booked_on(allowance: dg.EventLogRecord) -> dict[str, str]:
    """The portfolio and overlay hashes an allowance materialization records."""
    return {name: _metadata_text(allowance, name) for name in ("portfolio_sha256", "overlays_sha256", "scenario_weights_sha256")}


def chain_in_flight(instance: dg.DagsterInstance) -> str:
    """The runs and backfills still writing panels, prompts, policies, forecasts or allowances, in words ('' when none).

    Waiting for them keeps a step from being requested twice (a tick inside the quarter_end run would
    see the forecast written and the allowance not yet), and a backfill from booking every quarter it passes.
    """
    runs = [r.dagster_run for r in instance.get_run_records(dg.RunsFilter(statuses=IN_FLIGHT))]
    busy = [f"run {run.run_id[:8]} ({run.job_name})" for run in runs if _writes_chain(run.job_name, run.asset_selection)]
    busy += [f"backfill {b.backfill_id}" for b in instance.get_backfills(status=BulkActionStatus.REQUESTED)
             if _writes_chain(b.job_name, b.asset_selection)]
    return ", ".join(busy)


def _writes_chain(job_name: str | None, asset_selection) -> bool:
    return job_name in CHAIN_JOBS or bool(CHAIN & set(asset_selection or ()))


def _metadata_text(record: dg.EventLogRecord, name: str) -> str:
    value = record.asset_materialization.metadata.get(name) if record.asset_materialization else None
    return "" if value is None else str(value.value)
