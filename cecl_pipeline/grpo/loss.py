"""GRPO loss: group-relative advantages, PPO clip with DAPO clip-higher, k3 KL, loss aggregation.

Pure ``jax.numpy`` on per-token log-probs; nothing here knows the model. Shapes: N sequences
(= num_groups * G completions), T token columns, V vocab. ``mask`` [N, T] is 1 on completion
tokens and 0 on prompt and padding; whatever the log-prob arrays hold at mask 0 (even -inf or NaN)
never reaches the loss, its gradient or the metrics.

Choices a reader should know:

- Advantages use the **population** std of each group (``ddof=0``; rewards [1, 0, 0, 1] -> std 0.5).
  TRL's ``torch.std`` is the sample std (``ddof=1``); the two differ by a constant
  ``sqrt(G / (G - 1))`` for a fixed group size, i.e. only a learning-rate rescale.
- A group whose rewards are all equal gets advantage exactly 0 (not ``rounding / eps``), so that
  ``drop_zero_advantage_groups`` can find it from the advantages alone.
- Aggregations (as in DAPO / Dr.GRPO / TRL):
  ``token_mean``           sum over tokens / number of tokens in the batch,
  ``seq_mean_token_mean``  per-sequence token mean, then mean over sequences (original GRPO),
  ``constant``             sum over tokens / (N * constant_normalizer); without a normalizer,
                           the number of token columns T (the max completion length when the
                           log-probs cover only the completion).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp

from cecl_pipeline.grpo.knobs import ADVANTAGE_SCALES, AGGREGATIONS, default

Aggregation = Literal["token_mean", "seq_mean_token_mean", "constant"]
AdvantageScale = Literal["std", "none"]


@dataclasses.dataclass(frozen=True)
class GRPOLossConfig:
    """Static loss settings; hashable, so it can be a ``static_argnames`` of ``jax.jit``."""

    epsilon_low: float = default("grpo.loss.epsilon_low")  # ratio floor 1 - epsilon_low (binds for A < 0)
    epsilon_high: float = default("grpo.loss.epsilon_high")  # ratio ceiling 1 + epsilon_high (binds for A > 0), DAPO clip-higher
    beta: float = default("grpo.loss.beta")  # k3 KL coefficient; 0 needs no reference model
    aggregation: Aggregation = default("grpo.loss.aggregation")
    constant_normalizer: float | None = None  # "constant" only; None -> T
    advantage_scale: AdvantageScale = default("grpo.loss.advantage_scale")  # read by the caller of group_advantages
    drop_zero_advantage_groups: bool = default("grpo.loss.drop_zero_advantage_groups")  # needs group_size in grpo_loss

    def __post_init__(self):
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {self.aggregation!r}")
        if self.advantage_scale not in ADVANTAGE_SCALES:
            raise ValueError(f"advantage_scale must be one of {ADVANTAGE_SCALES}, got {self.advantage_scale!r}")
        if not (0 <= self.epsilon_low < 1 and self.epsilon_high >= 0):
            raise ValueError(f"need 0 <= epsilon_low < 1 and epsilon_high >= 0, got {self.epsilon_low}, {self.epsilon_high}")
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")
        if self.constant_normalizer is not None and self.constant_normalizer <= 0:
            raise ValueError(f"constant_normalizer must be > 0, got {self.constant_normalizer}")


# --- advantages --------------------------------------------------------------------------------


def _grouped(rewards: jax.Array, group_size: int | None) -> jax.Array:
    """Rewards as [num_groups, G], from [num_groups, G] or flat [N] with group_size."""
    rewards = jnp.asarray(rewards, jnp.float32)
    if rewards.ndim == 2:
        if group_size is not None and group_size != rewards.shape[1]:
            raise ValueError(f"group_size {group_size} != rewards.shape[1] {rewards.shape[1]}")
        return rewards
    if rewards.ndim != 1 or group_size is None or group_size < 1 or rewards.shape[0] % group_size:
        raise ValueError(f"need [num_groups, G] rewards, or flat [N] with N divisible by group_size; "
                         f"got shape {rewards.shape}, group_size {group_size}")
    return rewards.reshape(-1, group_size)


def zero_advantage_groups(rewards: jax.Array, group_size: int | None = None) -> jax.Array:
    """[N] bool: True for every sequence whose group's rewards are all equal (no learning signal)."""
    r = _grouped(rewards, group_size)
    flat = jnp.all(r == r[:, :1], axis=1)  # [num_groups]; exact equality, as rewards are usually discrete
    return jnp.repeat(flat, r.shape[1])


def group_advantages(rewards: jax.Array, group_size: int | None = None, *,
                     scale: AdvantageScale = "std", eps: float = 1e-6) -> jax.Array:
    """[N] advantages (r - group mean) / (population group std + eps), or r - group mean for "none"."""
    if scale not in ADVANTAGE_SCALES:
        raise ValueError(f"scale must be one of {ADVANTAGE_SCALES}, got {scale!r}")
    r = _grouped(rewards, group_size)
    centred = r - r.mean(axis=1, keepdims=True)
    if scale == "std":
        centred = centred / (r.std(axis=1, keepdims=True) + eps)  # ddof=0: population std
    # mean([0.1]*3) need not round back to 0.1; /eps would blow that residue up to ~1e-3
    flat = jnp.all(r == r[:, :1], axis=1, keepdims=True)
    return jnp.where(flat, 0.0, centred).reshape(-1)


# --- per-token terms ---------------------------------------------------------------------------


def _masked_diff(a: jax.Array, b: jax.Array, mask: jax.Array) -> jax.Array:
    """a - b where mask, else 0: padding values (-inf, NaN) never reach exp or the gradient."""
    return jnp.where(mask > 0, a.astype(jnp.float32) - b.astype(jnp.float32), 0.0)


def k3_kl(new_logprobs: jax.Array, ref_logprobs: jax.Array, mask: jax.Array) -> jax.Array:
    """[N, T] k3 estimator of KL(new || ref): exp(ref - new) - (ref - new) - 1 (>= 0, 0 off the mask)."""
    d = _masked_diff(ref_logprobs, new_logprobs, mask)
    return jnp.exp(d) - d - 1.0


def _aggregate(per_token: jax.Array, weights: jax.Array, kept_sequences: jax.Array,
               config: GRPOLossConfig) -> jax.Array:
    """Reduce [N, T] to a scalar over weights [N, T] (mask times kept sequence); empty batch -> 0."""
    total = jnp.sum(per_token * weights)
    if config.aggregation == "token_mean":
        return total / jnp.maximum(weights.sum(), 1.0)
    if config.aggregation == "seq_mean_token_mean":
        # like TRL: a kept sequence without completion tokens counts, contributing 0
        per_seq = jnp.sum(per_token * weights, axis=1) / jnp.maximum(weights.sum(axis=1), 1.0)
        return jnp.sum(per_seq * kept_sequences) / jnp.maximum(kept_sequences.sum(), 1.0)
    normalizer = config.constant_normalizer or per_token.shape[1]
    return total / (jnp.maximum(kept_sequences.sum(), 1.0) * normalizer)


def _kept_sequences(advantages: jax.Array, config: GRPOLossConfig, group_size: int | None) -> jax.Array:
    """[N] float: 0 for sequences of all-zero-advantage groups when dropping them, else 1."""
    if not config.drop_zero_advantage_groups:
        return jnp.ones_like(advantages)
    if group_size is None:
        raise ValueError("drop_zero_advantage_groups needs group_size")
    live = jnp.any(advantages.reshape(-1, group_size) != 0, axis=1)
    return jnp.repeat(live, group_size).astype(jnp.float32)


def _masked_token_mean(x: jax.Array, weights: jax.Array) -> jax.Array:
    """Weighted token mean; where, not a product, so NaN off the mask stays out."""
    return jnp.sum(jnp.where(weights > 0, x * weights, 0.0)) / jnp.maximum(weights.sum(), 1.0)


def grpo_loss(new_logprobs: jax.Array, old_logprobs: jax.Array, ref_logprobs: jax.Array | None,
              advantages: jax.Array, mask: jax.Array, config: GRPOLossConfig,
              group_size: int | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
    """(scalar loss, metrics) of the clipped surrogate plus beta * k3 KL, aggregated per config.

    new/old/ref log-probs [N, T] of the sampled tokens; advantages [N]; mask [N, T].
    group_size (static) is needed only for ``config.drop_zero_advantage_groups``: sequences of a
    group whose advantages are all 0 then get zero weight and leave every normaliser.
    Metrics (token means over the kept masked tokens, whatever the aggregation): clip_fraction,
    clip_fraction_low, clip_fraction_high, ratio_mean, kl_mean; and loss = pg_loss + kl_loss.
    """
    mask = jnp.asarray(mask, jnp.float32)
    advantages = jnp.asarray(advantages, jnp.float32)
    kept = _kept_sequences(advantages, config, group_size)
    weights = mask * kept[:, None]

    ratio = jnp.exp(_masked_diff(new_logprobs, old_logprobs, mask))  # 1 off the mask
    adv = advantages[:, None]
    unclipped = ratio * adv
    clipped = jnp.clip(ratio, 1.0 - config.epsilon_low, 1.0 + config.epsilon_high) * adv
    pg_tok = -jnp.minimum(unclipped, clipped)
    # the clip is active where its term is strictly the smaller: A > 0 above the ceiling, A < 0 below the floor
    active = clipped < unclipped
    pg_loss = _aggregate(pg_tok, weights, kept, config)

    if ref_logprobs is None:
        if config.beta > 0:
            raise ValueError("beta > 0 needs ref_logprobs")
        kl_tok = jnp.zeros_like(pg_tok)
    else:
        kl_tok = k3_kl(new_logprobs, ref_logprobs, mask)
    kl_loss = config.beta * _aggregate(kl_tok, weights, kept, config) if config.beta > 0 else jnp.float32(0.0)

    loss = pg_loss + kl_loss
    metrics = jax.lax.stop_gradient({
        "loss": loss,
        "pg_loss": pg_loss,
        "kl_loss": kl_loss,
        "kl_mean": _masked_token_mean(kl_tok, weights),
        "ratio_mean": _masked_token_mean(ratio, weights),
        "clip_fraction": _masked_token_mean(active, weights),
        "clip_fraction_low": _masked_token_mean(active & (adv < 0), weights),
        "clip_fraction_high": _masked_token_mean(active & (adv > 0), weights),
        "num_tokens": weights.sum(),
        "num_sequences": kept.sum(),
    })
    return loss, metrics


# --- entropy (logged, not optimised) -----------------------------------------------------------


def token_entropy(logits: jax.Array) -> jax.Array:
    """[..., V] logits -> [...] entropy in nats, lse(z) - sum softmax(z) * z, in float32."""
    z = logits.astype(jnp.float32)
    lse = jax.nn.logsumexp(z, axis=-1, keepdims=True)
    return (lse - jnp.sum(jnp.exp(z - lse) * z, axis=-1, keepdims=True))[..., 0]


def mean_token_entropy(logits: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean entropy over masked tokens of logits [N, T, V]; one sequence at a time to bound memory."""
    # lax.map keeps the float32 softmax at [T, V] instead of a second [N, T, V] buffer
    per_token = jax.lax.map(token_entropy, jax.lax.stop_gradient(logits))  # [N, T]
    return _masked_token_mean(per_token, jnp.asarray(mask, jnp.float32))
