"""Which target quarters a checkpoint's weights have seen, and the guard that keeps it off those quarters.

A GRPO member records ``trained_through`` in its manifest: the latest target quarter among its
training prompts, or among its warm-start base's, whichever is later. A checkpoint converted from
HF has seen no panel data (None). Forecasting a quarter at or before ``trained_through`` would score
the model on answers it was trained on, so it is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from cecl_pipeline.llm.checkpoint import MANIFEST
from cecl_pipeline.panel.windows import LookaheadError
from cecl_pipeline.quarters import shift, to_ordinal


def trained_through(checkpoint_dir: Path | str) -> str | None:
    """The latest target quarter the checkpoint was trained on; None for one never trained on the panel."""
    path = Path(checkpoint_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{checkpoint_dir}: no {MANIFEST}; not a complete checkpoint")
    manifest = json.loads(path.read_text())
    if manifest.get("trained_through"):
        return manifest["trained_through"]
    # Members written before the field existed trained on targets before their quarter, at the latest Q−1.
    return shift(manifest["quarter"], -1) if manifest.get("created_by") == "cecl_pipeline.grpo" else None


def training_targets_through(prompt_files: list[Path | str], base_dir: Path | str) -> str:
    """``trained_through`` for weights trained on ``prompt_files`` starting from ``base_dir``."""
    targets = pd.concat([pd.read_parquet(p, columns=["target_quarter"]) for p in prompt_files])["target_quarter"].unique().tolist()
    base = trained_through(base_dir)
    return max([*targets, *([base] if base else [])], key=to_ordinal)


def assert_not_trained_on(checkpoint_dir: Path | str, quarters: list[str]) -> None:
    """Refuse, naming them, every quarter in ``quarters`` whose targets the checkpoint was trained on."""
    through = trained_through(checkpoint_dir)
    if through is None:
        return
    seen = [q for q in quarters if to_ordinal(q) <= to_ordinal(through)]
    if seen:
        raise LookaheadError(f"{checkpoint_dir} was trained on targets up to {through}; it cannot be evaluated on "
                             f"{', '.join(seen)} (evaluate from {shift(through, 1)} on)")
