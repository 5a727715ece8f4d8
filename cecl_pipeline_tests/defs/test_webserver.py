"""The code location as the web UI loads it: a real dagster-webserver on a loopback port."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from cecl_pipeline.panel.validation import PANEL_CHECKS
from cecl_pipeline.settings import PROJECT_ROOT

QUERY = """{ assetNodes { assetKey { path } isPartitioned assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def wait_until_up(port: int, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else f"exited with {process.returncode}; see its log"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"dagster-webserver did not answer on port {port} within {seconds} s")


@pytest.mark.slow
def test_webserver_serves_the_asset_graph_with_blocking_checks(tmp_path):
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    command = [os.path.join(os.path.dirname(sys.executable), "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_up(port, process)
        nodes = {"/".join(n["assetKey"]["path"]): n for n in graphql(port, QUERY)["data"]["assetNodes"]}
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert set(nodes) == {"hf_checkpoint", "jax_checkpoint", "macro_history", "nco_panel", "nco_prompts", "grpo_policy", "walkforward_forecasts",
                          "walkforward_report", "forward_forecasts", "forward_scores", "cecl_allowance",
                          "debug_rollouts", "device_status", "training_progress", "checkpoint_cleanup", "policy_validation"}
    assert all(nodes[name]["isPartitioned"] for name in ("nco_panel", "nco_prompts", "grpo_policy", "walkforward_forecasts", "forward_forecasts",
                                                                    "cecl_allowance"))
    assert not nodes["walkforward_report"]["isPartitioned"]
    checks = {c["name"]: c["blocking"] for c in nodes["nco_panel"]["assetChecksOrError"]["checks"]}
    assert checks == {spec.name: spec.blocking for spec in PANEL_CHECKS}
