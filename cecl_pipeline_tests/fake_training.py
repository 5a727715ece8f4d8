"""A policy store on disk in the real layout, with a member still training: for monitor and cleanup tests."""

import json
from pathlib import Path


def fake_policy_store(root: Path, quarters: list[str], training: str) -> Path:
    """Complete policies for ``quarters`` and a member of ``training`` still in progress, in the real layout."""
    store = root / "grpo" / "cecl-tiny-seed0-float32"
    for quarter in quarters:
        (store / quarter / "member-0").mkdir(parents=True)
        (store / quarter / "member-0" / "weights.bin").write_bytes(b"\0" * 1024)
        (store / quarter / "policy.json").write_text("{}")
    work = store / training / "work" / "member-0"
    work.mkdir(parents=True)
    step = {"reward_mean": 0.5, "reward_std": 0.1, "parse_rate": 0.9, "mae": 0.3, "kl": 0.0, "clip_fraction": 0.0, "tokens_per_second": 100.0,
            "mfu": 0.4, "step_seconds": 1.2}
    (work / "metrics.jsonl").write_text("".join(json.dumps({**step, "step": k}) + "\n" for k in (1, 2)))
    return store
