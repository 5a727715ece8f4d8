"""Per-token log-probs of a Qwen3 policy over given sequences, and the supervised warm-start loss.

Whole sequences (SFT): column t scores token t+1 given tokens ≤ t, so a sequence of width L yields
L−1 columns; masks passed in are shifted the same way. Completions (GRPO): only the M tokens after
the prompt are scored, [N, M], and the head runs on those positions only; rows that come in runs of
one prompt (a GRPO group) compute that prompt once. Log-softmax runs in
float32 whatever the model's compute dtype, since the PPO ratio exponentiates differences of these numbers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cecl_pipeline.llm.config import Qwen3Config
from cecl_pipeline.llm.model import Qwen3, positions_from_valid
from cecl_pipeline.llm.sampler import prefill


def next_token_logprobs(logits: jax.Array, tokens: jax.Array) -> jax.Array:
    """log p(tokens[:, t+1] | ≤ t) from logits [N, L, V]: [N, L−1] float32."""
    return token_logprobs(logits[:, :-1], tokens[:, 1:])


def policy_logits(params, config: Qwen3Config, tokens: jax.Array, valid: jax.Array) -> jax.Array:
    """Logits [N, L, V] of left-padded ``tokens`` [N, L] (full forward, no cache)."""
    logits, _ = Qwen3(config).apply({"params": params}, tokens, positions_from_valid(valid), valid)
    return logits


def sequence_logprobs(params, config: Qwen3Config, tokens: jax.Array, valid: jax.Array) -> jax.Array:
    """Log-probs of every next token of left-padded ``tokens`` [N, L] under the policy: [N, L−1]."""
    return next_token_logprobs(policy_logits(params, config, tokens, valid), tokens)


def completion_logits(params, config: Qwen3Config, tokens: jax.Array, valid: jax.Array, prompt_width: int, share: int = 1) -> jax.Array:
    """Logits [N, M, V] scoring the M = L − prompt_width completion tokens of ``tokens`` [N, L] (the head runs on those only).

    ``share`` (static): rows come in runs of ``share`` with the same prompt columns, as a rollout's
    G completions of one prompt do. Each run's prompt is then run once into a KV cache, which its
    completions attend to: the same logits as ``share=1``, with the prompt's share of the forward
    and backward divided by ``share``.
    """
    if tokens.shape[0] % share:
        raise ValueError(f"{tokens.shape[0]} rows do not come in runs of {share} (share)")
    model = Qwen3(config)
    positions = positions_from_valid(valid)
    first = prompt_width - 1  # the last prompt token's output scores the first completion token
    cache = prefill(model, params, tokens[::share, :first], valid[::share, :first], tokens.shape[1] - prompt_width, share)
    logits, _ = model.apply({"params": params}, tokens[:, first:-1], positions[:, first:-1], valid[:, first:-1], cache=cache, cache_index=0)
    return logits


def token_logprobs(logits: jax.Array, tokens: jax.Array) -> jax.Array:
    """log p(tokens[:, t]) under logits[:, t] ([N, M, V] and [N, M]): [N, M] float32."""
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return jnp.take_along_axis(log_probs, tokens[..., None], axis=-1)[..., 0]


def completion_logprobs(params, config: Qwen3Config, tokens: jax.Array, valid: jax.Array, prompt_width: int, share: int = 1) -> jax.Array:
    """Log-probs [N, M] of the completion tokens ``tokens[:, prompt_width:]`` under the policy (``share`` as in ``completion_logits``)."""
    return token_logprobs(completion_logits(params, config, tokens, valid, prompt_width, share), tokens[:, prompt_width:])


# One compiled copy shared by rollouts and the reference-model pass (the config, prompt width and share are static).
completion_logprobs_jit = jax.jit(completion_logprobs, static_argnums=(1, 4, 5))


def completion_mask(prompt_width: int, sequence_valid: jax.Array) -> jax.Array:
    """[N, L−1] mask of the columns that score completion tokens (those after the prompt, up to EOS)."""
    width = sequence_valid.shape[1]
    is_completion = jnp.arange(1, width) >= prompt_width
    return sequence_valid[:, 1:] & is_completion[None, :]


def sft_loss(params, config: Qwen3Config, tokens: jax.Array, valid: jax.Array, prompt_width: int) -> jax.Array:
    """Mean negative log-likelihood of the valid tokens after ``prompt_width`` (the answer and its EOS) of ``tokens`` [N, L].

    The head runs on those positions only, as for GRPO's completions, not on all L positions for the
    few answer tokens that are scored: on the default tiny model and its 430-token prompts, an SFT
    step of 16 rows went from 3.2 s to 2.0 s on 2 cores.
    """
    logprobs = completion_logprobs(params, config, tokens, valid, prompt_width)
    weights = valid[:, prompt_width:].astype(jnp.float32)
    return -(logprobs * weights).sum() / jnp.maximum(weights.sum(), 1.0)
