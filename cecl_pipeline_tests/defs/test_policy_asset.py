"""grpo_policy on a real instance: Pipes subprocess, members, warm start, look-ahead, the gpu pool, resume after a kill."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import jax
import numpy as np
import psutil
import pytest

from cecl_pipeline.defs.policy import killed_by_signal
from cecl_pipeline.defs.resources import JaxRuntime
from cecl_pipeline.grpo.policy_store import PolicyStore
from cecl_pipeline.llm.checkpoint import load_jax_checkpoint
from cecl_pipeline.settings import PROJECT_ROOT
from cecl_pipeline_tests.cecl_command import CECL
from cecl_pipeline_tests.defs.dagster_dev import backfill_until_done, new_home, running_dagster_dev
from cecl_pipeline_tests.defs.policy_inputs import BASE, SMALL, build_inputs, run_log, run_policy, use_inputs


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Prompts for 2019Q1–Q2 and the converted default model, built once."""
    return build_inputs(tmp_path_factory.mktemp("policy-inputs"), ["2019Q1", "2019Q2"])


@pytest.fixture
def env(inputs, tmp_path, monkeypatch):
    """This test's checkpoint folder, holding a link to the shared converted model."""
    return PolicyStore(use_inputs(inputs, tmp_path / "checkpoints", monkeypatch))


def params_of(directory):
    return jax.tree.leaves(load_jax_checkpoint(directory)[1])


def differ(a, b) -> bool:
    return any(not np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_members_train_on_earlier_quarters_and_the_next_quarter_warm_starts(env, inputs, instance):
    result = run_policy("2019Q3", instance, members=2, wandb=True)
    assert result.success, run_log(instance, result)[-3000:]
    manifest = env.read_manifest("2019Q3")
    assert [Path(p).stem for p in manifest["prompt_files"]] == ["2019Q1", "2019Q2"]  # never 2019Q3 or later
    assert not manifest["warm_started"] and manifest["base_dirs"] == [str(env.root.parent.parent / "jax" / BASE)]
    base = params_of(inputs / "jax" / BASE)
    members = [params_of(m["path"]) for m in manifest["members"]]
    assert [m["seed"] for m in manifest["members"]] == [0, 1]
    assert differ(members[0], base) and differ(members[0], members[1])
    (materialization,) = result.asset_materializations_for_node("grpo_policy")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert metadata["members"] == 2 and metadata["steps"] == 2 and "| step | reward_mean |" in metadata["curve"]
    log = run_log(instance, result)
    assert "member 1: GRPO step 2/2" in log and "SFT warm-start" in log
    assert list((Path(os.environ["CECL_RESULTS_DIR"]) / "wandb").glob("wandb/offline-run-*"))  # W&B offline, no network

    nxt = run_policy("2019Q4", instance, members=2)
    assert nxt.success, run_log(instance, nxt)[-3000:]
    following = env.read_manifest("2019Q4")
    assert following["warm_started"] and following["base_dirs"] == [m["path"] for m in manifest["members"]]
    assert "SFT warm-start" not in run_log(instance, nxt)
    assert [Path(p).stem for p in following["prompt_files"]] == ["2019Q2"]  # 2019Q3 has no prompts: only what exists


def test_rematerializing_a_trained_quarter_reuses_its_members(env, instance):
    assert run_policy("2019Q3", instance).success
    written = (env.member_dir("2019Q3", 0) / "conversion.json").stat().st_mtime_ns
    again = run_policy("2019Q3", instance)
    assert again.success and "already trained for this job" in run_log(instance, again)
    assert (env.member_dir("2019Q3", 0) / "conversion.json").stat().st_mtime_ns == written
    changed = run_policy("2019Q3", instance, learning_rate=1e-3)  # another job: trained anew, not reused
    assert changed.success and "already trained" not in run_log(instance, changed)


def test_a_kl_penalty_trains_each_member_against_its_starting_policy(env, instance):
    result = run_policy("2019Q3", instance, beta=0.04)
    assert result.success, run_log(instance, result)[-3000:]
    steps = [json.loads(line) for line in (env.member_dir("2019Q3", 0) / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in steps] == [1, 2] and all(np.isfinite(m["kl"]) and m["kl"] >= 0 for m in steps)


def test_no_prompts_before_the_quarter_fails_clearly(env, instance):
    result = run_policy("2017Q1", instance)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert "no nco_prompts for 2016Q3–2016Q4" in failure.step_failure_data.user_failure_data.description
    assert not env.quarter_dir("2017Q1").exists()


def test_an_empty_ensemble_is_refused_before_training(env, instance):
    result = run_policy("2019Q3", instance, members=0)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert failure.step_failure_data.user_failure_data.description == "members: expected an integer ≥ 1, got 0"
    assert not env.quarter_dir("2019Q3").exists()


def test_training_runs_in_the_gpu_pool_limited_to_one(tmp_path):
    from cecl_pipeline.definitions import defs

    node = defs.resolve_asset_graph().get(dg.AssetKey("grpo_policy"))
    assert node.pools == {"gpu"}
    with dg.DagsterInstance.from_config(str(new_home(tmp_path / "home"))) as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1


def step_window(instance: dg.DagsterInstance, run_id: str, step: str = "grpo_policy") -> tuple[float, float]:
    """When ``step`` started and finished in a run, from the instance's event log."""
    times = {record.dagster_event.event_type_value: record.timestamp for record in instance.all_logs(run_id)
             if record.is_dagster_event and record.dagster_event.step_key == step}
    return times["STEP_START"], times["STEP_SUCCESS"]


@pytest.mark.slow
def test_two_training_requests_at_once_run_one_at_a_time(env, tmp_path):
    """Two `cecl train-nco` processes on one instance: the gpu pool lets one training step run at a time."""
    home = new_home(tmp_path / "shared-home")  # a new instance: both commands find it without tables
    knobs = [arg for knob, value in SMALL.items() for arg in ("--set", f"{knob}={value}")]
    requests = [subprocess.Popen([CECL, "train-nco", "--first", quarter, *knobs],
                                 env={**os.environ, "DAGSTER_HOME": str(home)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                for quarter in ("2019Q2", "2019Q3")]
    outputs = [request.communicate(timeout=600)[0] for request in requests]
    assert [request.returncode for request in requests] == [0, 0], outputs

    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert len(runs) == 2
        first, second = sorted(step_window(instance, run.run_id) for run in runs)
    assert second[0] >= first[1], f"training steps overlapped: {first} and {second}"
    assert env.read_manifest("2019Q2") and env.read_manifest("2019Q3")


@pytest.mark.slow
def test_an_asset_backfill_through_the_daemon_trains_quarters_in_order(env, tmp_path):
    """grpo_policy[Q] depends on grpo_policy[Q−1], so a backfill from the UI or GraphQL waits for each quarter's policy."""
    home = new_home(tmp_path / "home")
    backfill = {"assetSelection": [{"path": ["grpo_policy"]}], "partitionNames": ["2019-07-01", "2019-04-01"],  # newest first, on purpose
                "runConfigData": {"ops": {"grpo_policy": {"config": SMALL}}}}
    with running_dagster_dev(home, tmp_path / "dagster-dev.log") as port:
        backfill_id = backfill_until_done(port, home, backfill)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        windows = {run.tags["dagster/partition"]: step_window(instance, run.run_id) for run in runs}
    assert sorted(windows) == ["2019-04-01", "2019-07-01"]
    assert windows["2019-07-01"][0] >= windows["2019-04-01"][1], f"2019Q3 trained before 2019Q2 was done: {windows}"
    later = env.read_manifest("2019Q3")
    assert later["warm_started"] and later["base_dirs"] == [m["path"] for m in env.read_manifest("2019Q2")["members"]]


def test_jax_runtime_environment():
    env = JaxRuntime().env()
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false" and "--xla_gpu_deterministic_ops=true" in env["XLA_FLAGS"]
    assert "JAX_PLATFORMS" not in env and JaxRuntime(platform="cpu").env()["JAX_PLATFORMS"] == "cpu"
    assert env["JAX_COMPILATION_CACHE_DIR"].endswith(".cache/jax")


def committed_checkpoints(train: Path) -> list[int]:
    """The steps orbax has committed under ``train``: its ``<step>`` folders, not a killed save's ``<step>.orbax-checkpoint-tmp*``."""
    return sorted(int(p.name) for p in train.iterdir() if p.name.isdigit()) if train.is_dir() else []


def freeze(process: psutil.Process) -> None:
    """SIGSTOP ``process`` and return once it is stopped; psutil.Error if it ends first."""
    process.suspend()
    while (status := process.status()) != psutil.STATUS_STOPPED:
        if status == psutil.STATUS_ZOMBIE:
            raise psutil.ZombieProcess(process.pid)
        time.sleep(0.01)


def kill_training_once(metrics: Path, after_steps: int, killed: dict, done: threading.Event) -> None:
    """SIGKILL this test's training subprocess (grpo_process, under the in-process run) once ``after_steps`` are logged.

    The process is frozen first, and the train checkpoints it has committed are read while it cannot save
    another: ``killed["checkpoints"]``, the newest of which the restart must resume from. Killing at once
    raced the training: in CI (2 cores, -n 2) this thread was once held up for about a GRPO step, step 4
    was checkpointed before the kill, and the restart rightly resumed from step 4, not the 2 the test expected.
    """
    while not done.is_set():
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= after_steps:
            for child in psutil.Process().children(recursive=True):
                try:
                    if "cecl_pipeline.defs.grpo_process" not in " ".join(child.cmdline()):
                        continue
                    freeze(child)
                except psutil.Error:  # it ended meanwhile: another short-lived child, or a training that finished
                    continue
                killed.update(pid=child.pid, logged=len(metrics.read_text().splitlines()), checkpoints=committed_checkpoints(metrics.parent / "train"))
                child.kill()
                return
        time.sleep(0.05)


@pytest.mark.slow
def test_a_killed_training_process_is_restarted_in_the_same_run_and_resumes(env, instance):
    killed, done = {}, threading.Event()
    killer = threading.Thread(target=kill_training_once, args=(env.work_dir("2019Q3", 0) / "metrics.jsonl", 3, killed, done), daemon=True)
    killer.start()
    try:
        result = run_policy("2019Q3", instance, steps=5, checkpoint_every=2)
    finally:
        done.set()
        killer.join(timeout=5)
    assert killed, "the training process was never seen"
    assert result.success
    events = [event.event_type_value for event in result.all_events]
    assert events.count("STEP_UP_FOR_RETRY") == 1 and "STEP_RESTARTED" in events
    # Step 2 is checkpointed before it is logged, so with 3 steps logged step 2 (nearly always the newest) was committed.
    assert killed["checkpoints"] and killed["checkpoints"][-1] >= 2, killed
    log = run_log(instance, result)
    assert "restart 1 of 2" in log, log[-3000:]
    assert f"resuming from step {killed['checkpoints'][-1]}/5 " in log, (killed, log[-3000:])
    logged = [json.loads(line)["step"] for line in (env.member_dir("2019Q3", 0) / "metrics.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4, 5], killed  # steps logged before the kill and redone after the resume appear once


def test_only_a_training_process_ended_by_a_signal_counts_as_killed():
    assert killed_by_signal(RuntimeError("External execution process failed with code -9"))
    assert not killed_by_signal(RuntimeError("External execution process failed with code 1"))
    assert not killed_by_signal(ValueError("anything else"))


@pytest.mark.slow
def test_a_killed_training_resumes_from_its_last_checkpoint_exactly(env, inputs, instance, tmp_path):
    """SIGKILL the whole `dagster asset materialize` mid-training, re-materialize, and match an uninterrupted run bitwise."""
    config = {**SMALL, "steps": 5, "checkpoint_every": 2}
    command = [os.path.join(os.path.dirname(sys.executable), "dagster"), "asset", "materialize", "-m", "cecl_pipeline.definitions",
               "--select", "grpo_policy", "--partition", "2019-07-01", "--config-json", json.dumps({"ops": {"grpo_policy": {"config": config}}})]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    metrics = env.work_dir("2019Q3", 0) / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 3):
        assert process.poll() is None and time.monotonic() < deadline, "training ended or stalled before step 3"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert env.read_manifest("2019Q3") is None  # no policy is declared for a half-trained quarter

    resumed = run_policy("2019Q3", instance, steps=5, checkpoint_every=2)
    assert resumed.success and "resuming from step" in run_log(instance, resumed)
    logged = [json.loads(line)["step"] for line in (env.member_dir("2019Q3", 0) / "metrics.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4, 5]  # steps redone after the resume are logged once
    os.environ["CECL_CHECKPOINT_DIR"] = str(tmp_path / "uninterrupted")  # restored by monkeypatch in `env`
    (tmp_path / "uninterrupted" / "jax").mkdir(parents=True)
    (tmp_path / "uninterrupted" / "jax" / BASE).symlink_to(inputs / "jax" / BASE)
    assert run_policy("2019Q3", instance, steps=5).success
    uninterrupted = PolicyStore(tmp_path / "uninterrupted" / "grpo" / BASE)
    assert not differ(params_of(env.member_dir("2019Q3", 0)), params_of(uninterrupted.member_dir("2019Q3", 0)))
