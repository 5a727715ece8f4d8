"""The quarterly schedule and the new-drop-file sensor, evaluated against a real instance and real drop files."""

import datetime
import os
import uuid

import dagster as dg
import pandas as pd
import pytest

from cecl_pipeline.definitions import defs
from cecl_pipeline.defs.automation_config import AUTOMATION_RUN_CONFIG
from cecl_pipeline.defs.resources import DataPaths
from cecl_pipeline.defs.schedules import SCHEDULED_QUARTER_TAG, quarterly_retrain_schedule
from cecl_pipeline.defs.sensors import new_drop_file_sensor

UTC = datetime.UTC


def tick(instance, day: str):
    when = datetime.datetime.fromisoformat(day).replace(hour=6, tzinfo=UTC)
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when, repository_def=defs.get_repository_def())
    return quarterly_retrain_schedule.evaluate_tick(context)


def test_the_schedule_requests_the_quarter_just_finished_45_days_after_its_end(instance):
    (request,) = tick(instance, "2024-05-15").run_requests  # 2024Q1 ended 2024-03-31; +45 days
    assert request.partition_key == "2024-01-01" and request.tags[SCHEDULED_QUARTER_TAG] == "2024Q1"
    (before,) = tick(instance, "2024-05-14").run_requests
    assert before.partition_key == "2023-10-01"


def test_the_schedule_requests_each_quarter_once_and_catches_up_after_downtime(instance):
    instance.add_run(dg.DagsterRun(job_name="quarterly_retrain", run_id=str(uuid.uuid4()), tags={SCHEDULED_QUARTER_TAG: "2024Q1"}))
    skipped = tick(instance, "2024-06-01")
    assert not skipped.run_requests and "2024Q1 was already requested" in skipped.skip_message
    assert "next is due 2024-08-14" in skipped.skip_message
    (late,) = tick(instance, "2024-09-20").run_requests  # the daemon was down on 2024-08-14: caught up on the next tick
    assert late.partition_key == "2024-04-01"


def test_the_delay_is_configurable(instance, monkeypatch):
    monkeypatch.setenv("CECL_RETRAIN_DAYS_AFTER_QUARTER_END", "30")
    (request,) = tick(instance, "2024-04-30").run_requests
    assert request.partition_key == "2024-01-01"


def sense(instance, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"paths": DataPaths()}, repository_def=defs.get_repository_def())
    return new_drop_file_sensor.evaluate_tick(context)


def test_each_drop_file_version_triggers_ingestion_once(synthetic_layout, instance, monkeypatch):
    monkeypatch.delenv("CECL_RETRAIN_ON_NEW_DATA", raising=False)
    first = sense(instance)
    assert len(first.run_requests) == 16  # 2016Q1–2019Q4
    assert {r.job_name for r in first.run_requests} == {"ingest_quarter"}
    assert "2019-10-01" in {r.partition_key for r in first.run_requests}
    again = sense(instance, first.cursor)
    assert not again.run_requests and "no new drop files" in again.skip_message

    replaced = synthetic_layout.raw_nco_dir / "2019Q4.csv"
    frame = pd.read_csv(replaced)
    frame.loc[0, "nco_rate"] += 0.01
    frame.to_csv(replaced, index=False)
    os.utime(replaced, ns=(replaced.stat().st_atime_ns, replaced.stat().st_mtime_ns + 1_000_000))
    (request,) = sense(instance, again.cursor).run_requests
    assert request.partition_key == "2019-10-01" and request.tags["cecl/drop_file"] == "2019Q4.csv"


def test_new_data_can_launch_retraining_and_stray_files_are_ignored(synthetic_layout, instance, monkeypatch):
    (synthetic_layout.raw_nco_dir / "notes.csv").write_text("not a quarter\n")
    monkeypatch.setenv("CECL_RETRAIN_ON_NEW_DATA", "1")
    requests = sense(instance).run_requests
    assert len(requests) == 16 and {r.job_name for r in requests} == {"quarterly_retrain"}


def test_automated_runs_take_their_knobs_from_the_automation_config_file(synthetic_layout, instance, tmp_path, monkeypatch):
    knobs = tmp_path / "automation.yaml"
    knobs.write_text("ops:\n  grpo_policy:\n    config: {steps: 7}\n  forward_forecasts:\n    config: {samples: 2}\n")
    monkeypatch.setenv(AUTOMATION_RUN_CONFIG, str(knobs))
    (scheduled,) = tick(instance, "2024-05-15").run_requests
    assert scheduled.run_config == {"ops": {"grpo_policy": {"config": {"steps": 7}}}}  # quarterly_retrain has no forward_forecasts
    monkeypatch.setenv("CECL_RETRAIN_ON_NEW_DATA", "1")
    assert {str(r.run_config) for r in sense(instance).run_requests} == {str(scheduled.run_config)}
    monkeypatch.setenv(AUTOMATION_RUN_CONFIG, str(tmp_path / "missing.yaml"))
    with pytest.raises(Exception, match="evaluation of schedule quarterly_retrain_schedule") as failure:
        tick(instance, "2024-05-15")
    assert f"{AUTOMATION_RUN_CONFIG}={tmp_path / 'missing.yaml'}: no such file" in str(failure.value.__cause__)
