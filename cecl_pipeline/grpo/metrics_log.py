"""Where per-step training metrics go: a local JSONL file, and Weights & Biases.

W&B runs offline (files under ``results/wandb``, no network) unless the user has set both
WANDB_API_KEY and a project (WANDB_PROJECT or the ``project`` argument). The key is read by the
wandb SDK from the environment and never passes through this module, its config or its metrics.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path


def _plain(value):
    """JSON-safe scalars: numpy/jax scalars to Python, non-finite floats to null."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class JsonlLog:
    """Appends one JSON object per step; each line is flushed and fsynced before ``write`` returns."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, metrics: dict) -> None:
        self._file.write(json.dumps({k: _plain(v) for k, v in metrics.items()}) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def wandb_mode(project: str | None = None) -> str:
    """'online' only with both an API key and a project in the environment or arguments."""
    has_key = bool(os.environ.get("WANDB_API_KEY"))
    return "online" if has_key and (project or os.environ.get("WANDB_PROJECT")) else "offline"


class WandbLog:
    """A W&B run; offline by default (see ``wandb_mode``)."""

    def __init__(self, directory: Path | str, config: dict, project: str | None = None, name: str | None = None):
        import wandb

        Path(directory).mkdir(parents=True, exist_ok=True)
        self.mode = wandb_mode(project)
        self.run = wandb.init(
            mode=self.mode, dir=str(directory), project=project or os.environ.get("WANDB_PROJECT") or "cecl-pipeline", name=name,
            config=config, settings=wandb.Settings(silent=True, console="off"),
        )

    def write(self, metrics: dict) -> None:
        self.run.log({k: _plain(v) for k, v in metrics.items() if k != "step" and _plain(v) is not None}, step=int(metrics["step"]))

    def close(self) -> None:
        self.run.finish()


class MetricsLog:
    """Every sink at once; use as ``on_step`` and as a context manager."""

    def __init__(self, *sinks):
        self.sinks = sinks

    def __call__(self, metrics: dict) -> None:
        for sink in self.sinks:
            sink.write(metrics)

    def __enter__(self) -> MetricsLog:
        return self

    def __exit__(self, *exc) -> None:
        for sink in self.sinks:
            sink.close()


def step_line(m: dict, steps: int, member: int) -> str:
    """One progress line per GRPO step, for the run log."""
    mae = "—" if m["mae"] is None else f"{m['mae']:.3f} pp"
    return (f"member {member}: GRPO step {m['step']}/{steps} · reward {m['reward_mean']:+.3f} ± {m['reward_std']:.3f} · "
            f"parsed {m['parse_rate']:.0%} · MAE {mae} · KL {m['kl']:.4f} · clip {m['clip_fraction']:.2f} · "
            f"{m['tokens_per_second']:.0f} tok/s · MFU {m['mfu']:.1%} · {m['step_seconds']:.1f} s")
