import json

import numpy as np

from cecl_pipeline.grpo.metrics_log import JsonlLog, MetricsLog, WandbLog, wandb_mode


def test_jsonl_appends_one_plain_line_per_step(tmp_path):
    path = tmp_path / "logs" / "metrics.jsonl"
    with MetricsLog(JsonlLog(path)) as log:
        log({"step": 1, "reward_mean": np.float32(0.25), "mae": float("nan")})
    with MetricsLog(JsonlLog(path)) as log:  # a resumed run appends
        log({"step": 2, "reward_mean": 0.5, "mae": 1.5})
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [{"step": 1, "reward_mean": 0.25, "mae": None}, {"step": 2, "reward_mean": 0.5, "mae": 1.5}]


def test_wandb_is_offline_unless_both_key_and_project_are_set(monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    assert wandb_mode("cecl") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "not-a-real-key")
    assert wandb_mode() == "offline"
    assert wandb_mode("cecl") == "online"


def test_offline_wandb_run_records_metrics_and_never_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "secret-value-that-must-not-leak")
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    sink = WandbLog(tmp_path / "wandb", config={"group_size": 8}, name="test")
    assert sink.mode == "offline"
    with MetricsLog(sink) as log:
        for step in range(1, 4):
            log({"step": step, "reward_mean": 0.1 * step, "mae": None})
    (run_file,) = (tmp_path / "wandb").rglob("run-*.wandb")
    data = run_file.read_bytes()
    assert b"reward_mean" in data and b"group_size" in data
    written = b"".join(p.read_bytes() for p in (tmp_path / "wandb").rglob("*") if p.is_file())
    assert b"secret-value-that-must-not-leak" not in written
