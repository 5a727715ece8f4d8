"""The policy optimizer: global-norm clipping, then AdamW on a warmup + cosine schedule, optionally accumulated.

Choices, so that a run's log explains itself:

- Schedule: linear warmup to ``learning_rate`` over ``warmup_steps``, then cosine decay to
  ``learning_rate * min_lr_ratio`` at ``total_steps`` (optax counts the warmup inside ``total_steps``).
  The warmup starts at ``learning_rate / (warmup_steps + 1)``, not 0, so ``lr(s) = lr * (s + 1) / (warmup_steps + 1)``:
  a GRPO step costs a full rollout, and a first update at learning rate 0 would throw one away.
- Clipping comes before AdamW and acts on the (accumulated, mean) gradient, as in HF/TRL.
- Weight decay (decoupled, scaled by the learning rate as in ``optax.adamw``) applies to ≥2-D weights only:
  never to RMSNorm ``scale`` vectors (decaying them toward 0 shrinks activations, not complexity), and by
  default not to ``embedding`` either: AdamW decays every row on every step, gradient or not, so rows of
  tokens the RL prompts never use (the tied embedding is also the output head) would erode for nothing.
  ``decay_embeddings=True`` restores HF's behaviour.
- Accumulation: ``grad_accum_steps > 1`` wraps everything in ``optax.MultiSteps`` (mean of the micro-batch
  gradients, one real update every k calls; the schedule counts real updates).
- Precision: no bf16 parameter storage here. With a small learning rate a bf16 weight cannot absorb the
  update (1e-5 against a 0.02 weight is below bf16's 2**-8 resolution), so the master weights and the
  Adam moments stay in the parameters' dtype; for bf16 compute keep ``param_dtype="float32"`` and set
  ``dtype="bfloat16"`` on the model config.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import optax

from cecl_pipeline.grpo.knobs import default

NORM_LEAF = "scale"
EMBEDDING_LEAF = "embedding"


@dataclass(frozen=True)
class OptimizerConfig:
    learning_rate: float = default("grpo.optimizer.learning_rate")
    warmup_steps: int = default("grpo.optimizer.warmup_steps")
    total_steps: int = 1000  # optimizer updates, warmup included
    min_lr_ratio: float = 0.1  # final learning rate as a fraction of the peak
    weight_decay: float = 0.01
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    max_grad_norm: float | None = 1.0  # None or 0 turns clipping off
    grad_accum_steps: int = 1
    decay_embeddings: bool = False

    def __post_init__(self):
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.warmup_steps < self.total_steps:
            raise ValueError(f"need 0 <= warmup_steps ({self.warmup_steps}) < total_steps ({self.total_steps})")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.grad_accum_steps < 1:
            raise ValueError(f"grad_accum_steps must be >= 1, got {self.grad_accum_steps}")
        if self.max_grad_norm is not None and self.max_grad_norm < 0:
            raise ValueError(f"max_grad_norm must be >= 0 or None, got {self.max_grad_norm}")


def learning_rate_schedule(config: OptimizerConfig) -> optax.Schedule:
    """Optimizer-update index -> learning rate."""
    peak = config.learning_rate
    return optax.warmup_cosine_decay_schedule(
        init_value=peak / (config.warmup_steps + 1), peak_value=peak, warmup_steps=config.warmup_steps,
        decay_steps=config.total_steps, end_value=peak * config.min_lr_ratio,
    )


def learning_rate_at(config: OptimizerConfig, step: int) -> float:
    """The learning rate of optimizer update ``step`` (0-based), for logging."""
    return float(learning_rate_schedule(config)(step))


def _decays(path, leaf, decay_embeddings: bool) -> bool:
    name = getattr(path[-1], "key", getattr(path[-1], "name", None)) if path else None
    if name == EMBEDDING_LEAF and not decay_embeddings:
        return False
    return name != NORM_LEAF and getattr(leaf, "ndim", 0) >= 2


def weight_decay_mask(params, decay_embeddings: bool = False):
    """A tree of bools like ``params``: True where weight decay applies."""
    return jax.tree_util.tree_map_with_path(lambda p, x: _decays(p, x, decay_embeddings), params)


def make_optimizer(config: OptimizerConfig) -> optax.GradientTransformation:
    """clip_by_global_norm -> AdamW(schedule, masked decay), wrapped in MultiSteps when accumulating."""
    adamw = optax.adamw(
        learning_rate_schedule(config), b1=config.b1, b2=config.b2, eps=config.eps, weight_decay=config.weight_decay,
        mask=lambda params: weight_decay_mask(params, config.decay_embeddings),
    )
    parts = [optax.clip_by_global_norm(config.max_grad_norm)] if config.max_grad_norm else []
    optimizer = optax.chain(*parts, adamw)
    if config.grad_accum_steps > 1:
        return optax.MultiSteps(optimizer, every_k_schedule=config.grad_accum_steps).gradient_transformation()
    return optimizer
