"""The new-data sensor: a new or replaced drop file in raw/nco/ requests ingestion of its quarter, or retraining."""

import json
import os
from pathlib import Path

import dagster as dg

from cecl_pipeline.defs.automation_config import automation_run_config, job_assets
from cecl_pipeline.defs.jobs import ingest_quarter, quarterly_retrain
from cecl_pipeline.defs.resources import DataPaths
from cecl_pipeline.panel.store import drop_file_versions
from cecl_pipeline.quarters import QuarterError, label, to_partition_key

RETRAIN_ON_NEW_DATA = "CECL_RETRAIN_ON_NEW_DATA"  # "1": a new drop file launches quarterly_retrain instead of ingest_quarter


def retrain_on_new_data() -> bool:
    return os.environ.get(RETRAIN_ON_NEW_DATA, "").strip().lower() in ("1", "true", "yes")


@dg.sensor(
    jobs=[ingest_quarter, quarterly_retrain],
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description=f"Each new or replaced raw/nco/<YYYYQn>.csv|parquet requests ingest_quarter for its quarter once "
                f"(quarterly_retrain when {RETRAIN_ON_NEW_DATA}=1).",
)
def new_drop_file_sensor(context: dg.SensorEvaluationContext, paths: DataPaths):
    seen = json.loads(context.cursor) if context.cursor else {}
    current = drop_file_versions(paths.layout())
    job = quarterly_retrain if retrain_on_new_data() else ingest_quarter
    requests = []
    for name, version in current.items():
        if seen.get(name) == version:
            continue
        try:
            quarter = label(Path(name).stem)
        except QuarterError:
            context.log.warning(f"{paths.layout().raw_nco_dir / name}: not named for a quarter (e.g. 2019Q1.csv); ignored")
            continue
        requests.append(dg.RunRequest(run_key=f"{name}:{version}", job_name=job.name, partition_key=to_partition_key(quarter),
                                      run_config=automation_run_config(job_assets(job)), tags={"cecl/quarter": quarter, "cecl/drop_file": name}))
    # The cursor holds every file's version, so each version triggers once, even across daemon restarts.
    context.update_cursor(json.dumps(current, sort_keys=True))
    return requests or dg.SkipReason(f"no new drop files in {paths.layout().raw_nco_dir}")
