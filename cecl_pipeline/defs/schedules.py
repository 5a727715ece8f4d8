"""The quarterly retraining schedule: quarterly_retrain for the quarter just finished, once its call-report data is out."""

import datetime
import os

import dagster as dg

from cecl_pipeline.defs.automation_config import automation_run_config, job_assets
from cecl_pipeline.defs.jobs import quarterly_retrain
from cecl_pipeline.quarters import latest_due_quarter, quarter_end, shift, to_partition_key

SCHEDULED_QUARTER_TAG = "cecl/scheduled_quarter"
DEFAULT_DAYS_AFTER_QUARTER_END = 45  # call reports are due 30–35 days after quarter end; the aggregates follow


def days_after_quarter_end() -> int:
    return int(os.environ.get("CECL_RETRAIN_DAYS_AFTER_QUARTER_END", DEFAULT_DAYS_AFTER_QUARTER_END))


@dg.schedule(
    job=quarterly_retrain,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Daily check at 06:00 UTC; requests quarterly_retrain once for each quarter, "
                "CECL_RETRAIN_DAYS_AFTER_QUARTER_END (default 45) days after it ends.",
)
def quarterly_retrain_schedule(context: dg.ScheduleEvaluationContext):
    days = days_after_quarter_end()
    quarter = latest_due_quarter(context.scheduled_execution_time.date(), days)
    # A schedule's run key only dedupes within one tick, so ask the instance: one run per quarter,
    # and a day the daemon was down is caught up on the next tick.
    earlier = context.instance.get_run_records(dg.RunsFilter(job_name=quarterly_retrain.name, tags={SCHEDULED_QUARTER_TAG: quarter}), limit=1)
    if earlier:
        return dg.SkipReason(f"quarterly_retrain for {quarter} was already requested (run {earlier[0].dagster_run.run_id}); "
                             f"the next is due {quarter_end(shift(quarter, 1)) + datetime.timedelta(days=days)}")
    return dg.RunRequest(run_key=f"quarterly_retrain:{quarter}", partition_key=to_partition_key(quarter),
                         run_config=automation_run_config(job_assets(quarterly_retrain)), tags={SCHEDULED_QUARTER_TAG: quarter})
