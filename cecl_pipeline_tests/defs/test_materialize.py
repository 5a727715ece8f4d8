"""In-process materializations of the graph on a real, persistent Dagster instance."""

import os
import subprocess
import sys

import dagster as dg
import pandas as pd
import pytest

from cecl_pipeline.defs.runs import materialize_quarters, run_assets
from cecl_pipeline.envs.registry import ENVS
from cecl_pipeline.files import sha256_file
from cecl_pipeline.panel.validation import PANEL_CHECKS
from cecl_pipeline.quarters import quarter_range
from cecl_pipeline.settings import PROJECT_ROOT


def latest(instance, asset, quarter=None):
    key = dg.AssetKey(asset)
    if quarter is None:
        return instance.get_latest_materialization_event(key).asset_materialization
    from cecl_pipeline.quarters import to_partition_key

    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key, asset_partitions=[to_partition_key(quarter)]), limit=1)
    return records.records[0].asset_materialization


def test_panel_and_prompts_over_several_quarters(synthetic_layout, instance):
    assert run_assets(["macro_history"], None, instance).success
    history = materialize_quarters(["nco_panel"], quarter_range("2016Q1", "2018Q4"), instance, progress=lambda _: None)
    targets = materialize_quarters(["nco_panel", "nco_prompts"], ["2019Q1", "2019Q2"], instance, progress=lambda _: None)
    assert all(s.success and s.checks_passed == s.checks_total == len(PANEL_CHECKS) for s in history + targets)

    panel = latest(instance, "nco_panel", "2019Q2")
    assert panel.metadata["rows"].value == 32 and panel.metadata["entities"].value == 8
    assert panel.metadata["sha256"].value == sha256_file(synthetic_layout.panel_parquet("2019Q2"))
    assert "| entity_id" in panel.metadata["preview"].value

    prompts = latest(instance, "nco_prompts", "2019Q2")
    assert prompts.metadata["history"].value == "2016Q2–2019Q1"
    assert prompts.metadata["examples_per_env"].value == 32 and prompts.metadata["rows"].value == len(ENVS) * 32
    assert len(pd.read_parquet(synthetic_layout.prompts_parquet("2019Q2"))) == len(ENVS) * 32

    checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("nco_panel"), "unique_keys")]
    )
    assert checks  # recorded on the instance, visible in the UI
    assert latest(instance, "macro_history").metadata["status"].value == "accepted"


def test_prompts_without_the_target_panel_fail_clearly(synthetic_layout, instance):
    result = run_assets(["nco_prompts"], "2019Q1", instance)
    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert "no accepted nco_panel for 2019Q1" in message


def test_the_asset_graph_mapping_is_twelve_quarters_back():
    from cecl_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    prompts = graph.get(dg.AssetKey("nco_prompts"))
    assert dg.AssetKey("nco_panel") in prompts.parent_keys and dg.AssetKey("macro_history") in prompts.parent_keys
    mapping = graph.get_partition_mapping(dg.AssetKey("nco_prompts"), dg.AssetKey("nco_panel"))
    assert (mapping.start_offset, mapping.end_offset) == (-12, 0)


@pytest.mark.slow
def test_dagster_cli_materializes_one_quarter_from_the_project_root(synthetic_layout, tmp_path):
    """`dagster asset materialize` as a user types it, against a persistent DAGSTER_HOME."""
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home")}
    os.makedirs(env["DAGSTER_HOME"])
    bin_dir = os.path.dirname(sys.executable)

    def materialize(select, partition=None):
        command = [os.path.join(bin_dir, "dagster"), "asset", "materialize", "-m", "cecl_pipeline.definitions", "--select", select]
        command += ["--partition", partition] if partition else []
        done = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]

    materialize("macro_history")
    # ingest the history quarters in one go through the library, then the target quarter through the CLI
    from cecl_pipeline.panel.ingest import ingest_quarter

    for quarter in quarter_range("2016Q1", "2018Q4"):
        ingest_quarter(synthetic_layout, quarter)
    materialize("nco_panel,nco_prompts", "2019-01-01")
    assert synthetic_layout.prompts_parquet("2019Q1").exists()
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        assert instance.get_latest_materialization_event(dg.AssetKey("nco_prompts")) is not None
