"""G sampled forecasts per prompt from a trained policy checkpoint, with every completion kept for the audit trail."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cecl_pipeline.envs.registry import get_env
from cecl_pipeline.files import sha256_file
from cecl_pipeline.grpo.rewards import ForecastReward
from cecl_pipeline.llm.checkpoint import MANIFEST
from cecl_pipeline.quarters import to_ordinal


@dataclass(frozen=True)
class SampleSettings:
    samples: int = 8  # G completions per prompt and member
    temperature: float = 1.0
    max_new_tokens: int = 24
    prompt_length: int = 1024
    batch: int = 64  # rows per sampler call
    seed: int = 0

    def __post_init__(self):
        if self.samples < 1 or self.batch < 1:
            raise ValueError(f"samples and batch must be at least 1, got samples={self.samples}, batch={self.batch}")


def checkpoint_hash(checkpoint_dir: Path | str) -> str:
    """sha256 of the checkpoint's manifest, which is written last and names what the weights are."""
    return sha256_file(Path(checkpoint_dir) / MANIFEST)


class LoadedPolicy:
    """A policy checkpoint read once, with its chat template, for sampling many batches of prompts."""

    def __init__(self, checkpoint_dir: Path | str):
        from cecl_pipeline.llm.chat_template import ChatTemplate
        from cecl_pipeline.llm.checkpoint import load_jax_checkpoint

        self.path = Path(checkpoint_dir)
        self.model_config, self.params = load_jax_checkpoint(checkpoint_dir, dtype="float32")
        self.template = ChatTemplate(checkpoint_dir)


def sample_checkpoint(checkpoint_dir: Path | str, prompts: pd.DataFrame, env: str, quarter: str, settings: SampleSettings,
                      member: int = 0, log: Callable[[str], None] = print) -> pd.DataFrame:
    """One row per (prompt, sample): ``prompt_id, model_input, sample, completion, parsed, completion_tokens``.

    ``parsed`` is the forecast when the answer parses and is plausible, else NaN. Sampling is
    seeded by (seed, quarter, member), so the same inputs give the same completions.
    """
    return sample_policy(LoadedPolicy(checkpoint_dir), prompts, env, settings, (to_ordinal(quarter), member), f"member {member}", log)


def sample_policy(policy: LoadedPolicy, prompts: pd.DataFrame, env: str, settings: SampleSettings, stream: tuple[int, ...], name: str,
                  log: Callable[[str], None] = print) -> pd.DataFrame:
    """``sample_checkpoint`` on a loaded policy, seeded by ``settings.seed`` and then each number of ``stream`` in turn."""
    import jax

    from cecl_pipeline.llm.generation import decode_completions, generate
    from cecl_pipeline.llm.prompt_tokens import encode_texts, render_prompts, stop_and_pad_ids
    from cecl_pipeline.llm.sampler import SamplingConfig

    started = time.perf_counter()
    texts = render_prompts(policy.template, prompts)
    tokens, valid = encode_texts(policy.template, texts, list(prompts["prompt_id"]), settings.prompt_length)
    eos_ids, pad_id = stop_and_pad_ids(policy.model_config, policy.template.tokenizer)
    sampling = SamplingConfig(settings.max_new_tokens, settings.temperature, eos_token_ids=eos_ids, pad_token_id=pad_id)
    rng = jax.random.PRNGKey(settings.seed)
    for number in stream:
        rng = jax.random.fold_in(rng, number)
    repeat = settings.samples
    sequences, sequence_valid = generate(policy.params, policy.model_config, tokens, valid, sampling, rng, settings.batch, repeat)
    width = tokens.shape[1]
    completions = decode_completions(sequences, sequence_valid, width, policy.template.tokenizer, pad_id)
    reading = ForecastReward(get_env(env).answer)
    anchors = np.repeat(get_env(env).anchors(prompts), repeat)
    parsed = [reading.plausible(c, a) for c, a in zip(completions, anchors, strict=True)]
    new_tokens = sequence_valid[:, width:].sum(axis=1)
    seconds = time.perf_counter() - started
    log(f"{name}: {len(completions)} completions ({len(prompts)} prompts × {repeat}) in {seconds:.1f} s · "
        f"{new_tokens.sum() / seconds:.0f} tok/s · parsed {np.mean([p is not None for p in parsed]):.0%}")
    return pd.DataFrame({
        "prompt_id": np.repeat(prompts["prompt_id"].to_numpy(), repeat),
        "model_input": np.repeat(np.array(texts, dtype=object), repeat),
        "sample": np.tile(np.arange(repeat), len(prompts)),
        "completion": completions,
        "parsed": np.array([np.nan if p is None else p for p in parsed], float),
        "completion_tokens": new_tokens.astype(np.int32),
    })
