"""End to end against a running instance: `dagster dev` (webserver + daemon) on loopback, driven over GraphQL."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from cecl_pipeline.panel.ingest import ingest_macro
from cecl_pipeline.settings import PROJECT_ROOT
from cecl_pipeline_tests.defs.test_webserver import free_port, graphql, wait_until_up

LAUNCH_RUN = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } ... on RunConfigValidationInvalid { errors { message } } } }"""
LAUNCH_BACKFILL = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""
RUN_STATUS = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"""
BACKFILL_STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } } }"""
LOCATIONS = """{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }"""


def call(port: int, query: str, **variables) -> dict:
    import json
    import urllib.request

    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    assert "errors" not in answer, answer["errors"]
    return answer["data"]


def wait_for(read_status, done: set[str], seconds: float = 420) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = read_status()
        if status in done:
            return status
        time.sleep(1)
    raise TimeoutError(f"still {status} after {seconds} s")


@pytest.fixture
def dagster_dev(synthetic_layout, tmp_path):
    """`dagster dev` on a free loopback port with a temporary DAGSTER_HOME holding the project's dagster.yaml."""
    ingest_macro(synthetic_layout)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").symlink_to(PROJECT_ROOT / "dagster.yaml")
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    command = [os.path.join(os.path.dirname(sys.executable), "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    log = open(tmp_path / "dagster-dev.log", "w")
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_up(port, process, seconds=180)
        yield port, home
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def backfill_failures(home: Path, backfill_id: str) -> str:
    """The step failures of a backfill's runs, for an assertion message."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        messages = [f"{run.tags.get('dagster/partition')} {run.status}: {record.message or ''} {record.user_message}"
                    for run in runs for record in instance.all_logs(run.run_id) if record.is_dagster_event and record.dagster_event.is_step_failure]
    return "\n".join(messages) or f"{len(runs)} run(s), no step failure recorded"


@pytest.mark.slow
def test_a_graphql_run_and_a_two_quarter_backfill_through_the_daemon(dagster_dev, synthetic_layout):
    port, home = dagster_dev
    (repository,) = call(port, LOCATIONS)["repositoriesOrError"]["nodes"]
    selector = {"repositoryLocationName": repository["location"]["name"], "repositoryName": repository["name"]}

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
    launched = call(port, LAUNCH_BACKFILL, params=backfill)["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    status = wait_for(lambda: call(port, BACKFILL_STATUS, id=launched["backfillId"])["partitionBackfillOrError"]["status"],
                      {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"})
    assert status in ("COMPLETED", "COMPLETED_SUCCESS"), backfill_failures(home, launched["backfillId"])

    with dg.DagsterInstance.from_config(str(home)) as instance:
        for asset in ("nco_panel", "nco_prompts"):
            materialized = instance.get_materialized_partitions(dg.AssetKey(asset))
            assert {"2019-01-01", "2019-04-01", "2019-07-01"} <= materialized
    for quarter in ("2019Q2", "2019Q3"):
        assert Path(synthetic_layout.prompts_parquet(quarter)).is_file()
