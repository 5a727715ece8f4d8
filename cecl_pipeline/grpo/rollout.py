"""Rollouts: G sampled completions per prompt, scored by the reward function given, with advantages and old log-probs.

When an update reuses a rollout (several PPO epochs or minibatches), the old log-probs are
recomputed with the forward pass that the update uses (``completion_logits``: the prompt once per
group, then all completion tokens at once), so the PPO ratio is 1 before the first update up to
float rounding, not 1 ± the token-by-token decode's rounding. With one epoch of one minibatch the update
runs on the very params that sampled, so it takes the old log-probs as its own, gradient stopped,
and the extra forward pass is skipped (as TRL does).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from cecl_pipeline.grpo.data import PromptSet
from cecl_pipeline.grpo.logprobs import completion_logprobs_jit
from cecl_pipeline.grpo.loss import group_advantages, zero_advantage_groups
from cecl_pipeline.grpo.rewards import RewardFn
from cecl_pipeline.llm.config import Qwen3Config
from cecl_pipeline.llm.generation import decode_completions, generate
from cecl_pipeline.llm.sampler import SamplingConfig


@dataclass(frozen=True)
class RolloutSettings:
    sampling: SamplingConfig  # length, temperature, stop and pad ids
    tokenizer: object  # decodes completions for the reward
    group_size: int  # G completions per prompt
    inference_batch: int  # completions per sampler call
    advantage_scale: str = "std"
    old_logprobs: bool = True  # False when the update takes its own (see the module docstring)


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


def rollout(params, model_config: Qwen3Config, prompts: PromptSet, settings: RolloutSettings, reward: RewardFn, rng: jax.Array) -> Rollout:
    """G completions for each of ``prompts``, scored by ``reward`` against the prompts' targets."""
    g = settings.group_size
    prompt_width = prompts.tokens.shape[1]
    sequences, sequence_valid = generate(params, model_config, prompts.tokens, prompts.valid, settings.sampling, rng, settings.inference_batch, g)
    completions = decode_completions(sequences, sequence_valid, prompt_width, settings.tokenizer, settings.sampling.pad_token_id)
    per_completion = lambda column: np.repeat(column, g).tolist()
    scored = reward(completions, per_completion(prompts.targets), per_completion(prompts.scales), per_completion(prompts.anchors))
    rewards = jnp.asarray([r.total for r in scored], jnp.float32)
    old = np.asarray(completion_logprobs_jit(params, model_config, sequences, sequence_valid, prompt_width, g)) if settings.old_logprobs else None
    return Rollout(
        sequences=sequences,
        sequence_valid=sequence_valid,
        mask=sequence_valid[:, prompt_width:],
        old_logprobs=old,
        rewards=np.asarray(rewards),
        advantages=np.asarray(group_advantages(rewards, g, scale=settings.advantage_scale)),
        kept=~np.asarray(zero_advantage_groups(rewards, g)),
        completions=completions,
        parsed=[r.parsed for r in scored],
        errors=[r.error for r in scored],
        format_ok=[r.format_ok for r in scored],
    )
