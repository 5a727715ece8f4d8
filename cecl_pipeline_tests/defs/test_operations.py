"""The operations assets (gpu-status, monitor, clean-old-checkpoints) as real materializations on a real instance."""

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import dagster as dg

from cecl_pipeline.defs.runs import run_assets
from cecl_pipeline.grpo.policy_store import REMOVING, PolicyStore, training_in_progress
from cecl_pipeline_tests.cecl_command import CECL
from cecl_pipeline_tests.fake_training import fake_policy_store


def latest_metadata(instance: dg.DagsterInstance, asset: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    return {name: value.value for name, value in event.asset_materialization.metadata.items()}


def checkpoints() -> Path:
    return Path(os.environ["CECL_CHECKPOINT_DIR"])


def test_device_status_records_what_jax_sees(instance):
    assert run_assets(["device_status"], instance=instance).success
    metadata = latest_metadata(instance, "device_status")
    assert metadata["backend"] == "cpu" and metadata["devices"] >= 1 and metadata["gpu_visible"] is False
    assert "| cpu:0 |" in metadata["device_table"]


def test_cleanup_records_a_dry_run_and_deletes_only_when_asked(instance):
    store = fake_policy_store(checkpoints(), ["2019Q1", "2019Q2", "2019Q3"], training="2019Q4")
    config = lambda delete: {"ops": {"checkpoint_cleanup": {"config": {"keep": 1, "delete": delete}}}}

    assert run_assets(["checkpoint_cleanup"], instance=instance, run_config=config(False)).success
    dry = latest_metadata(instance, "checkpoint_cleanup")
    assert dry["dry_run"] is True and dry["quarters"] == 2 and "| 2019Q1 |" in dry["policies"] and "| 2019Q3 |" not in dry["policies"]
    assert PolicyStore(store).quarters() == ["2019Q1", "2019Q2", "2019Q3"]

    assert run_assets(["checkpoint_cleanup"], instance=instance, run_config=config(True)).success
    assert latest_metadata(instance, "checkpoint_cleanup")["dry_run"] is False
    assert sorted(p.name for p in store.iterdir()) == ["2019Q3", "2019Q4"]  # the training in progress is untouched


def test_a_removal_cut_short_leaves_nothing_that_passes_for_a_policy_and_the_next_one_sweeps_it():
    store = PolicyStore(fake_policy_store(checkpoints(), ["2019Q1", "2019Q2", "2019Q3"], training="2019Q4"))
    # What remove_quarter leaves when it dies inside rmtree: the manifest gone, the rest under .removing/.
    store.manifest_path("2019Q1").unlink()
    (store.root / REMOVING).mkdir()
    store.quarter_dir("2019Q1").rename(store.root / REMOVING / "2019Q1")
    assert store.quarters() == ["2019Q2", "2019Q3"]
    assert training_in_progress(checkpoints()).quarter == "2019Q4"

    store.remove_quarter("2019Q2")
    assert sorted(p.name for p in store.root.iterdir()) == ["2019Q3", "2019Q4"]

    # The same quarter again, retrained since an earlier removal of it was cut short.
    (store.root / REMOVING / "2019Q3" / "member-0").mkdir(parents=True)
    store.remove_quarter("2019Q3")
    assert sorted(p.name for p in store.root.iterdir()) == ["2019Q4"]


def test_monitor_follows_a_member_until_it_finishes(instance):
    store = fake_policy_store(checkpoints(), [], training="2019Q2")
    metrics = store / "2019Q2" / "work" / "member-0" / "metrics.jsonl"
    first = json.loads(metrics.read_text().splitlines()[0])

    def train_on():
        time.sleep(0.5)
        with open(metrics, "a") as fh:
            fh.write(json.dumps({**first, "step": 3, "reward_mean": 0.75}) + "\n")
        time.sleep(0.5)
        metrics.unlink()  # the member is done: its work directory goes once the policy is written

    trainer = threading.Thread(target=train_on)
    trainer.start()
    config = {"ops": {"training_progress": {"config": {"follow": True, "steps": 3, "poll_seconds": 0.1}}}}
    result = run_assets(["training_progress"], instance=instance, run_config=config)
    trainer.join()
    assert result.success
    metadata = latest_metadata(instance, "training_progress")
    assert metadata["training"] == "grpo_policy 2019Q2 member 0"
    assert metadata["steps_seen"] == 3 and metadata["step"] == 3 and metadata["reward_mean"] == 0.75


def test_ctrl_c_stops_following_records_the_run_and_leaves_the_training_alone():
    store = fake_policy_store(checkpoints(), [], training="2019Q2")
    monitor = subprocess.Popen([CECL, "monitor", "--steps", "16"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in monitor.stdout:
        lines.append(line)
        if "GRPO step 2/16" in line:
            break
    time.sleep(1.0)  # inside the follow loop's poll
    monitor.send_signal(signal.SIGINT)
    out, err = monitor.communicate(timeout=60)
    assert monitor.returncode == 0, err
    assert "✓ training_progress" in out and "Traceback" not in err
    assert (store / "2019Q2" / "work" / "member-0" / "metrics.jsonl").is_file()
    with dg.DagsterInstance.get() as instance:
        assert latest_metadata(instance, "training_progress")["steps_seen"] == 2
