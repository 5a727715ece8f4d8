"""End to end against a running instance: `dagster dev` (webserver + daemon) on loopback, driven over GraphQL."""

from pathlib import Path

import dagster as dg
import pytest

from cecl_pipeline.panel.ingest import ingest_macro
from cecl_pipeline_tests.defs.dagster_dev import backfill_until_done, call, new_home, repository_selector, running_dagster_dev, wait_for
from cecl_pipeline_tests.postgres_server import PASSWORD

LAUNCH_RUN = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } ... on RunConfigValidationInvalid { errors { message } } } }"""
RUN_STATUS = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"""
INSTANCE_INFO = """{ instance { info } }"""


@pytest.fixture
def dagster_dev(synthetic_layout, storage, tmp_path):
    """`dagster dev` with a temporary DAGSTER_HOME holding the project's instance settings for ``storage``."""
    ingest_macro(synthetic_layout)
    home = new_home(tmp_path / "dagster_home")
    with running_dagster_dev(home, tmp_path / "dagster-dev.log") as port:
        yield port, home


@pytest.mark.slow
def test_a_graphql_run_and_a_two_quarter_backfill_through_the_daemon(dagster_dev, storage, synthetic_layout):
    port, home = dagster_dev
    info = call(port, INSTANCE_INFO)["instance"]["info"]
    assert ("PostgresRunStorage" in info) == (storage == "postgres")
    assert PASSWORD not in info  # the UI's instance page shows the settings, never the URL's secret
    selector = repository_selector(port)

    params = {"selector": {**selector, "jobName": "ingest_quarter"}, "runConfigData": {},
              "executionMetadata": {"tags": [{"key": "dagster/partition", "value": "2019-01-01"}]}}
    launched = call(port, LAUNCH_RUN, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    status = wait_for(lambda: call(port, RUN_STATUS, id=run_id)["runOrError"]["status"], {"SUCCESS", "FAILURE", "CANCELED"})
    assert status == "SUCCESS"
    assert synthetic_layout.prompts_parquet("2019Q1").is_file()

    # A job backfill: exactly these partitions. (An asset backfill of nco_panel + nco_prompts would
    # also take every nco_prompts partition whose 12-quarter window reaches the new panels.)
    backfill = {"selector": {"partitionSetName": "ingest_quarter_partition_set", "repositorySelector": selector},
                "partitionNames": ["2019-04-01", "2019-07-01"]}
    backfill_until_done(port, home, backfill)

    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == ("PostgresRunStorage" if storage == "postgres" else "SqliteRunStorage")
        for asset in ("nco_panel", "nco_prompts"):
            materialized = instance.get_materialized_partitions(dg.AssetKey(asset))
            assert {"2019-01-01", "2019-04-01", "2019-07-01"} <= materialized
    for quarter in ("2019Q2", "2019Q3"):
        assert Path(synthetic_layout.prompts_parquet(quarter)).is_file()
