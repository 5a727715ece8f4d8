"""Inputs for tests that train grpo_policy on a real instance: synthetic prompts and the converted default model."""

from pathlib import Path

import pandas as pd

from cecl_pipeline.bootstrap.default_data import write_synthetic
from cecl_pipeline.bootstrap.default_model import write_default_hf_checkpoint
from cecl_pipeline.bootstrap.synthetic_scenarios import synthesize_scenarios
from cecl_pipeline.defs.runs import run_assets
from cecl_pipeline.envs.prompt_dataset import PromptRequest, build_prompt_dataset
from cecl_pipeline.llm.convert import hf_to_jax
from cecl_pipeline.panel.ingest import ingest_macro, ingest_quarter
from cecl_pipeline.panel.scenarios import store_scenario
from cecl_pipeline.quarters import quarter_range, shift, to_ordinal
from cecl_pipeline.settings import DataLayout

BASE = "cecl-tiny-seed0-float32"
MACRO_ENV = {"env": "nco_enhanced", "prompt_length": 1536}  # its table (and the target quarter's macro line) is longer than 1024 tokens
SMALL = {"steps": 2, "sft_steps": 3, "sft_batch_size": 8, "groups_per_batch": 2, "group_size": 4, "ppo_minibatch": 8,
         "num_generation_tokens": 8, "inference_batch_per_device": 8, "train_quarters": 2, "checkpoint_every": 1, "wandb": False}


def build_inputs(root: Path, prompt_quarters: list[str]) -> Path:
    """Prompts for ``prompt_quarters`` (8 synthetic banks) and the default tiny model converted, through the library."""
    layout = DataLayout(root / "data")
    write_synthetic(layout, n_banks=8, seed=3, first="2016Q1", last="2019Q4")
    ingest_macro(layout)
    for quarter in quarter_range(shift(prompt_quarters[0], -12), prompt_quarters[-1]):
        ingest_quarter(layout, quarter)
    for quarter in prompt_quarters:
        build_prompt_dataset(layout, PromptRequest(quarter))
    write_default_hf_checkpoint(root / "hf")
    hf_to_jax(root / "hf", root / "jax" / BASE)
    return root


def use_inputs(inputs: Path, checkpoints: Path, monkeypatch) -> Path:
    """Point the pipeline at ``inputs``' data and at a fresh checkpoint folder linking the converted model; returns the policy store root."""
    (checkpoints / "jax").mkdir(parents=True)
    (checkpoints / "jax" / BASE).symlink_to(inputs / "jax" / BASE)
    monkeypatch.setenv("CECL_DATA_DIR", str(inputs / "data"))
    monkeypatch.setenv("CECL_CHECKPOINT_DIR", str(checkpoints))
    return checkpoints / "grpo" / BASE


def store_scenarios_after(layout: DataLayout, origin: str) -> list:
    """The synthetic baseline and severely adverse scenarios from the quarter after ``origin``, stored in place of any others."""
    macro = pd.read_parquet(layout.macro_parquet)
    scenarios = synthesize_scenarios(macro[macro["quarter"].map(to_ordinal) <= to_ordinal(origin)])
    for stale in layout.scenarios_dir.glob("*.csv"):  # the synthetic default's own start after its last quarter
        stale.unlink()
    for scenario in scenarios:
        store_scenario(scenario, layout.scenarios_dir)
    return scenarios


def run_policy(quarter, instance, **overrides):
    config = {"ops": {"grpo_policy": {"config": {**SMALL, **overrides}}}}
    return run_assets(["grpo_policy"], quarter, instance, run_config=config)


def run_log(instance, result) -> str:
    return "\n".join(e.user_message for e in instance.all_logs(result.run_id))
