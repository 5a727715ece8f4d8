"""A running `dagster dev` (webserver + daemon) on a free loopback port, and its GraphQL API, for end-to-end tests."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from cecl_pipeline.settings import PROJECT_ROOT, instance_yaml
from cecl_pipeline_tests.defs.test_webserver import free_port, wait_until_up

LOCATIONS = """{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }"""
LAUNCH_BACKFILL = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""
BACKFILL_STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } } }"""


def new_home(path: Path) -> Path:
    """A DAGSTER_HOME holding the project's instance settings for this environment (SQLite, or Postgres with DAGSTER_PG_URL)."""
    path.mkdir()
    (path / "dagster.yaml").symlink_to(instance_yaml())
    return path


@contextmanager
def running_dagster_dev(home: Path, log_path: Path) -> Iterator[int]:
    """`dagster dev` on ``home``; yields its port and stops the whole process group (webserver, daemon, code server) after."""
    port = free_port()
    command = [os.path.join(os.path.dirname(sys.executable), "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    with open(log_path, "a") as log:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env={**os.environ, "DAGSTER_HOME": str(home)}, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until_up(port, process, seconds=180)
            yield port
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def call(port: int, query: str, **variables) -> dict:
    """One GraphQL request; GraphQL-level errors fail the test with their message."""
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    assert "errors" not in answer, answer["errors"]
    return answer["data"]


def repository_selector(port: int) -> dict:
    (repository,) = call(port, LOCATIONS)["repositoriesOrError"]["nodes"]
    return {"repositoryLocationName": repository["location"]["name"], "repositoryName": repository["name"]}


def wait_for(read_status, done: set[str], seconds: float = 420) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = read_status()
        if status in done:
            return status
        time.sleep(1)
    raise TimeoutError(f"still {status} after {seconds} s")


def backfill_until_done(port: int, home: Path, params: dict) -> str:
    """Launch a backfill over GraphQL, wait until the daemon has finished it, and fail with its runs' errors unless it succeeded."""
    launched = call(port, LAUNCH_BACKFILL, params=params)["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]
    status = wait_for(lambda: call(port, BACKFILL_STATUS, id=backfill_id)["partitionBackfillOrError"]["status"],
                      {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"})
    assert status in ("COMPLETED", "COMPLETED_SUCCESS"), backfill_failures(home, backfill_id)
    return backfill_id


def backfill_failures(home: Path, backfill_id: str) -> str:
    """The step failures of a backfill's runs, for an assertion message."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        messages = [f"{run.tags.get('dagster/partition')} {run.status}: {record.message or ''} {record.user_message}"
                    for run in runs for record in instance.all_logs(run.run_id) if record.is_dagster_event and record.dagster_event.is_step_failure]
    return "\n".join(messages) or f"{len(runs)} run(s), no step failure recorded"
