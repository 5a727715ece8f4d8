"""Through the daemon: a new quarter's drop file turns into that quarter's forward forecast and allowance, with no person involved.

`dagster dev` runs with both sensors started. History up to 2019Q2 is already ingested (the
drop-file sensor's cursor has seen those files). Then 2019Q3.csv arrives: the drop-file sensor
ingests it, and the quarter-end sensor trains grpo_policy[2019Q4], then makes forward_forecasts[2019Q3]
and books cecl_allowance[2019Q3]. The automated runs take their knobs from CECL_AUTOMATION_RUN_CONFIG.
"""

import json
import shutil

import dagster as dg
import pandas as pd
import pytest
import yaml

from cecl_pipeline.defs.automation_config import AUTOMATION_RUN_CONFIG
from cecl_pipeline.defs.quarter_end_sensor import BOOKED_QUARTER_TAG
from cecl_pipeline.panel.store import drop_file_versions, read_panel
from cecl_pipeline.settings import DataLayout
from cecl_pipeline_tests.defs.dagster_dev import call, new_home, repository_selector, running_dagster_dev, wait_for
from cecl_pipeline_tests.defs.policy_inputs import SMALL, build_inputs, use_inputs
from cecl_pipeline_tests.defs.test_daemon_restart import START_SENSOR

SET_CURSOR = """mutation($s: SensorSelector!, $c: String) { setSensorCursor(sensorSelector: $s, cursor: $c) {
  __typename ... on PythonError { message } } }"""


def allowance_partitions(home) -> set[str]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return instance.get_materialized_partitions(dg.AssetKey("cecl_allowance"))


def runs_in_order(home) -> list[tuple[str, str, str]]:
    """(job, partition, status) of every run, oldest first."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.get_run_records(order_by="create_timestamp", ascending=True)
        return [(r.dagster_run.job_name, r.dagster_run.tags.get("dagster/partition", ""), r.dagster_run.status.value) for r in records]


def failed_run(home) -> str:
    """'' while no run failed, else the failed run's job and partition (wait_for stops on it)."""
    failed = [f"{job} {partition}" for job, partition, status in runs_in_order(home) if status == "FAILURE"]
    return f"failed: {failed}" if failed else ""


@pytest.mark.slow
def test_a_new_drop_file_becomes_a_new_allowance_through_the_daemon(tmp_path, monkeypatch):
    root = build_inputs(tmp_path / "inputs", ["2019Q1", "2019Q2"])  # accepted panels and prompts up to 2019Q2
    use_inputs(root, tmp_path / "checkpoints", monkeypatch)
    layout = DataLayout(root / "data")
    held = tmp_path / "held-back"
    held.mkdir()
    for quarter in ("2019Q3", "2019Q4"):
        shutil.move(layout.raw_nco_dir / f"{quarter}.csv", held / f"{quarter}.csv")
    pools = read_panel(layout.panel_parquet("2019Q2"))[["entity_id", "segment"]].head(6)
    layout.portfolio_csv("2019Q3").parent.mkdir(parents=True, exist_ok=True)
    pools.assign(amortized_cost=1000.0, remaining_life_quarters=6).to_csv(layout.portfolio_csv("2019Q3"), index=False)
    knobs = tmp_path / "automation.yaml"
    knobs.write_text(yaml.safe_dump({"ops": {"grpo_policy": {"config": SMALL},
                                             "forward_forecasts": {"config": {"samples": 2, "horizon": 2}}}}))
    monkeypatch.setenv(AUTOMATION_RUN_CONFIG, str(knobs))
    home = new_home(tmp_path / "dagster_home")

    with running_dagster_dev(home, tmp_path / "dagster-dev.log") as port:
        repository = repository_selector(port)
        drop_sensor = {**repository, "sensorName": "new_drop_file_sensor"}
        seen = json.dumps(drop_file_versions(layout), sort_keys=True)  # history up to 2019Q2 was ingested before
        assert call(port, SET_CURSOR, s=drop_sensor, c=seen)["setSensorCursor"]["__typename"] == "Sensor"
        for name in ("new_drop_file_sensor", "quarter_end_sensor"):
            assert call(port, START_SENSOR, s={**repository, "sensorName": name})["startSensor"]["__typename"] == "Sensor"
        shutil.move(held / "2019Q3.csv", layout.raw_nco_dir / "2019Q3.csv")
        wait_for(lambda: failed_run(home) or str("2019-07-01" in allowance_partitions(home)), {"True"}, seconds=900)

    runs = [(job, partition) for job, partition, status in runs_in_order(home) if status == "SUCCESS"]
    assert runs == [("ingest_quarter", "2019-07-01"), ("train_policy", "2019-10-01"), ("quarter_end", "2019-07-01")]
    booked = pd.read_parquet(layout.allowance_dir("2019Q3") / "pools.parquet")
    assert len(booked) == 6 and (booked["model_allowance"] > 0).all()
    forecasts = pd.read_parquet(layout.forward_parquet("2019Q3"))
    assert sorted(forecasts["quarter"].unique()) == ["2019Q4", "2020Q1"]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        tagged = instance.get_run_records(dg.RunsFilter(tags={BOOKED_QUARTER_TAG: "2019Q3"}))
        assert len(tagged) == 2
        (policy,) = instance.fetch_materializations(dg.AssetKey("grpo_policy"), limit=5).records
        assert policy.asset_materialization.partition == "2019-10-01"
