"""Rollouts: G sampled completions per prompt, their rewards, advantages and old log-probs.

When an update reuses a rollout (several PPO epochs or minibatches), the old log-probs are
recomputed with the forward pass that the update uses (``completion_logits``: the prompt once per
group, then all completion tokens at once), so the PPO ratio is 1 before the first update up to
float rounding, not 1 ± the token-by-token decode's rounding. With one epoch of one minibatch the update
runs on the very params that sampled, so it takes the old log-probs as its own, gradient stopped,
and the extra forward pass is skipped (as TRL does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from cecl_pipeline.grpo.loss import group_advantages, zero_advantage_groups
from cecl_pipeline.grpo.policy import completion_logprobs_jit
from cecl_pipeline.grpo.rewards import RewardConfig, score_batch
from cecl_pipeline.llm.config import Qwen3Config
from cecl_pipeline.llm.sampler import SamplingConfig, sample


@dataclass
class Rollout:
    sequences: np.ndarray  # [N, P+M] int32, N = prompts × G
    sequence_valid: np.ndarray  # [N, P+M] bool
    mask: np.ndarray  # [N, M] bool: real completion tokens (up to and including EOS)
    old_logprobs: np.ndarray | None  # [N, M] float32; None when the update uses its own (see the module docstring)
    rewards: np.ndarray  # [N] float32
    advantages: np.ndarray  # [N] float32
    kept: np.ndarray  # [N] bool: False for groups whose rewards are all equal (no learning signal)
    completions: list[str]
    parsed: list[float | None]
    errors: list[float | None]
    format_ok: list[bool]

    def select(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The arrays an update needs, for ``rows``."""
        arrays = {"sequences": self.sequences[rows], "sequence_valid": self.sequence_valid[rows], "mask": self.mask[rows],
                  "advantages": self.advantages[rows]}
        return arrays if self.old_logprobs is None else {**arrays, "old_logprobs": self.old_logprobs[rows]}


def generate(params, config: Qwen3Config, tokens: np.ndarray, valid: np.ndarray, sampling: SamplingConfig, rng: jax.Array, chunk: int,
             group_size: int = 1):
    """``group_size`` completions of each prompt row, sampled ``chunk`` completions at a time (the inference batch).

    Returns sequences and their validity, in runs of ``group_size`` rows per prompt. Within a chunk,
    the completions of one prompt share its prefill.
    """
    share = math.gcd(chunk, group_size)  # completions of one prompt that always land in the same chunk
    tokens, valid = np.repeat(tokens, group_size // share, 0), np.repeat(valid, group_size // share, 0)
    rows = chunk // share
    sequences, sequence_valid = [], []
    for i, start in enumerate(range(0, len(tokens), rows)):
        result = sample(params, config, tokens[start : start + rows], valid[start : start + rows], sampling, jax.random.fold_in(rng, i),
                        group_size=share)
        sequences.append(np.asarray(result.sequences))
        sequence_valid.append(np.asarray(result.sequence_valid))
    return np.concatenate(sequences), np.concatenate(sequence_valid)


def decode_completions(sequences: np.ndarray, sequence_valid: np.ndarray, prompt_width: int, tokenizer, pad_id: int) -> list[str]:
    """The text of each row's new tokens (special tokens such as EOS left out)."""
    completion_ids = np.where(sequence_valid[:, prompt_width:], sequences[:, prompt_width:], pad_id)
    return tokenizer.batch_decode(completion_ids.tolist(), skip_special_tokens=True)


def rollout(params, config: Qwen3Config, tokens: np.ndarray, valid: np.ndarray, targets: np.ndarray, tokenizer,
            sampling: SamplingConfig, group_size: int, rewards_config: RewardConfig, advantage_scale: str,
            rng: jax.Array, chunk: int, old_logprobs: bool = True) -> Rollout:
    """G completions for each of the prompts ``tokens`` [g, P], scored against ``targets`` [g]."""
    prompt_width = tokens.shape[1]
    sequences, sequence_valid = generate(params, config, tokens, valid, sampling, rng, chunk, group_size)
    completions = decode_completions(sequences, sequence_valid, prompt_width, tokenizer, sampling.pad_token_id)
    scored = score_batch(completions, np.repeat(targets, group_size).tolist(), rewards_config)
    rewards = jnp.asarray([r.total for r in scored], jnp.float32)
    old = np.asarray(completion_logprobs_jit(params, config, sequences, sequence_valid, prompt_width, group_size)) if old_logprobs else None
    return Rollout(
        sequences=sequences,
        sequence_valid=sequence_valid,
        mask=sequence_valid[:, prompt_width:],
        old_logprobs=old,
        rewards=np.asarray(rewards),
        advantages=np.asarray(group_advantages(rewards, group_size, scale=advantage_scale)),
        kept=~np.asarray(zero_advantage_groups(rewards, group_size)),
        completions=completions,
        parsed=[r.parsed for r in scored],
        errors=[r.error for r in scored],
        format_ok=[r.format_ok for r in scored],
    )
