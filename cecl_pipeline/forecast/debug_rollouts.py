"""debug-nco: what a policy answers to a few of quarter Q's prompts, and how GRPO would score each answer.

For looking inside a run that learns nothing: whether answers parse, how far they land from the
realised rate, and which completions a group's advantages would push up or down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cecl_pipeline.challengers.scale import naive_scale
from cecl_pipeline.envs.registry import Env
from cecl_pipeline.files import atomic_dir
from cecl_pipeline.forecast.policy_samples import SampleSettings, sample_checkpoint
from cecl_pipeline.forecast.walkforward import load_examples
from cecl_pipeline.grpo.loss import group_advantages
from cecl_pipeline.grpo.policy_store import PolicyStore
from cecl_pipeline.grpo.rewards import RewardFn
from cecl_pipeline.grpo.trainer import GRPOConfig
from cecl_pipeline.grpo.training_job import grpo_config_from_dict


@dataclass(frozen=True)
class ServingPolicy:
    checkpoint: Path
    knobs: GRPOConfig  # what it was trained with: env, answer length, prompt length, reward


def serving_policy(store: PolicyStore, quarter: str, base_checkpoint: Path, base_knobs: GRPOConfig) -> ServingPolicy:
    """Member 0 of grpo_policy[Q] with its own knobs, or the base checkpoint with ``base_knobs`` before Q is trained."""
    manifest = store.read_manifest(quarter)
    if manifest is None:
        if not base_checkpoint.is_dir():
            raise FileNotFoundError(f"neither grpo_policy[{quarter}] nor the base checkpoint {base_checkpoint} exists: "
                                    "run `cecl convert-model` first")
        return ServingPolicy(base_checkpoint, base_knobs)
    return ServingPolicy(Path(manifest["members"][0]["path"]), grpo_config_from_dict(manifest["job"]["grpo"]))


COLUMNS = ["prompt_id", "segment", "sample", "target", "parsed", "error", "format_ok", "reward", "advantage", "completion"]


def debug_rollouts(checkpoint_dir: Path, prompts_path: Path, env: Env, quarter: str, settings: SampleSettings, prompts: int,
                   reward: RewardFn, advantage_scale: str = "std", log: Callable[[str], None] = print) -> pd.DataFrame:
    """G completions for each of the first ``prompts`` prompts of Q, scored with the training reward; one row per completion."""
    if prompts < 1:
        raise ValueError(f"prompts must be at least 1, got {prompts}")
    examples = load_examples(prompts_path, env.name, quarter).head(prompts)
    samples = sample_checkpoint(checkpoint_dir, examples, env.name, quarter, settings, log=log)
    by_prompt = examples.set_index("prompt_id")
    targets = by_prompt.loc[samples["prompt_id"], "target"].to_numpy(float)
    rows = by_prompt.loc[samples["prompt_id"]]
    scored = reward(list(samples["completion"]), list(targets), list(naive_scale(list(rows["history"]))), list(env.anchors(rows)))
    reward = np.array([s.total for s in scored])
    return pd.DataFrame({
        "prompt_id": samples["prompt_id"],
        "segment": by_prompt.loc[samples["prompt_id"], "segment"].to_numpy(),
        "sample": samples["sample"],
        "target": targets,
        "parsed": [np.nan if s.parsed is None else s.parsed for s in scored],
        "error": [np.nan if s.error is None else s.error for s in scored],
        "format_ok": [s.format_ok for s in scored],
        "reward": reward,
        "advantage": np.asarray(group_advantages(reward, settings.samples, scale=advantage_scale)),
        "completion": samples["completion"],
    })[COLUMNS]


def rollouts_markdown(rollouts: pd.DataFrame, completion_chars: int = 60) -> str:
    """A table a person can read in a terminal or the web UI; long completions are cut."""
    cell = lambda v: "—" if isinstance(v, float) and np.isnan(v) else f"{v:+.3f}" if isinstance(v, float) else str(v)
    clip = lambda text: (text if len(text) <= completion_chars else text[:completion_chars] + "…").replace("|", "\\|").replace("\n", "⏎")
    header = ["prompt_id", "sample", "target", "parsed", "reward", "advantage", "completion"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rollouts.itertuples():
        values = [row.prompt_id, row.sample, row.target, row.parsed, row.reward, row.advantage]
        lines.append("| " + " | ".join(cell(v) for v in values) + f" | `{clip(row.completion)}` |")
    return "\n".join(lines)


def summary_line(rollouts: pd.DataFrame) -> str:
    parsed = rollouts["parsed"].notna()
    mae = f"{rollouts.loc[parsed, 'error'].mean():.3f} pp" if parsed.any() else "—"
    return (f"{len(rollouts)} completions · parsed {parsed.mean():.0%} · well-formed {rollouts['format_ok'].mean():.0%} · "
            f"reward {rollouts['reward'].mean():+.3f} ± {rollouts['reward'].std(ddof=0):.3f} · MAE of parsed {mae}")


def write_rollouts(rollouts: pd.DataFrame, directory: Path, title: str) -> Path:
    """rollouts.parquet and rollouts.md in ``directory``, replaced as a whole."""
    with atomic_dir(directory) as staging:
        rollouts.to_parquet(staging / "rollouts.parquet", index=False)
        (staging / "rollouts.md").write_text(f"# {title}\n\n{summary_line(rollouts)}\n\n{rollouts_markdown(rollouts)}\n")
    return directory
