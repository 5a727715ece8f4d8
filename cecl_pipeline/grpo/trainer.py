"""The GRPO training step and loop: rollouts, then PPO epochs over minibatches, checkpointed every step.

State is one pytree ``{"params", "opt_state", "rng", "step"}`` plus the prompt cursor, so a run
restored from its latest checkpoint continues bit for bit where it stopped (on CPU).
Given a device mesh (``grpo.sharding``), parameters and optimizer state are sharded over it and each
update's minibatch is split over every device; the step is the same code, and a checkpoint written
on one device count restores onto another (orbax reads it into the template's shardings).
Minibatches hold whole groups when ``ppo_minibatch`` is a multiple of ``group_size``, which is what
lets the loss drop groups without any learning signal.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import jax
import numpy as np
import optax
from jax.sharding import Mesh

from cecl_pipeline.envs.registry import get_env
from cecl_pipeline.grpo.data import CursorState, PromptCursor, PromptSet
from cecl_pipeline.grpo.knobs import default
from cecl_pipeline.grpo.logprobs import completion_logits, completion_logprobs_jit, token_logprobs
from cecl_pipeline.grpo.loss import GRPOLossConfig, grpo_loss, mean_token_entropy
from cecl_pipeline.grpo.optim import OptimizerConfig, learning_rate_at, make_optimizer
from cecl_pipeline.grpo.rewards import RewardConfig, RewardFn
from cecl_pipeline.grpo.rollout import Rollout, RolloutSettings, rollout
from cecl_pipeline.grpo.sharding import shard_batch, shard_params
from cecl_pipeline.grpo.train_checkpoints import TrainCheckpoints
from cecl_pipeline.llm.config import Qwen3Config
from cecl_pipeline.llm.flops import device_peak_flops, grouped_update_flops, matmul_peak_flops, mfu
from cecl_pipeline.llm.sampler import SamplingConfig


@dataclass(frozen=True)
class GRPOConfig:
    """The seed's knobs, one to one (defaults and meanings in ``knobs``), plus the loss, optimizer and reward settings."""

    env: str = default("grpo.env")
    groups_per_batch: int = default("grpo.groups_per_batch")
    group_size: int = default("grpo.group_size")
    ppo_minibatch: int = default("grpo.ppo_minibatch")
    ppo_epochs: int = default("grpo.ppo_epochs")
    num_generation_tokens: int = default("grpo.num_generation_tokens")
    inference_batch_per_device: int = default("grpo.inference_batch_per_device")
    prompt_length: int = default("grpo.prompt_length")
    temperature: float = default("grpo.temperature")
    top_k: int = 0
    top_p: float = 1.0
    seed: int = default("grpo.seed")
    loss: GRPOLossConfig = field(default_factory=GRPOLossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    rewards: RewardConfig = field(default_factory=RewardConfig)

    def __post_init__(self):
        get_env(self.env)  # an unknown env is refused here, naming the known ones
        completions = self.groups_per_batch * self.group_size
        if completions % self.ppo_minibatch:
            raise ValueError(f"groups_per_batch × group_size ({completions}) must be a multiple of ppo_minibatch ({self.ppo_minibatch})")
        if self.loss.drop_zero_advantage_groups and self.ppo_minibatch % self.group_size:
            raise ValueError("drop_zero_advantage_groups needs ppo_minibatch to be a multiple of group_size (whole groups per update)")


class GRPOTrainer:
    """Holds the training prompts, the reward, the frozen reference policy and the compiled update; ``step`` advances a state."""

    def __init__(self, config: GRPOConfig, model_config: Qwen3Config, prompts: PromptSet, tokenizer, eos_token_ids: tuple[int, ...],
                 reward: RewardFn, reference_params=None, mesh: Mesh | None = None):
        if config.loss.beta > 0 and reference_params is None:
            raise ValueError("loss.beta > 0 needs reference_params: the frozen starting policy the KL term pulls toward")
        devices = 1 if mesh is None else mesh.devices.size
        if config.ppo_minibatch % devices:
            raise ValueError(f"ppo_minibatch ({config.ppo_minibatch}) must be a multiple of the {devices} devices of the mesh")
        self.config, self.model_config, self.prompts, self.reward, self.mesh = config, model_config, prompts, reward, mesh
        self.reference_params = self._place_params(reference_params) if config.loss.beta > 0 else None
        sampling = SamplingConfig(config.num_generation_tokens, config.temperature, config.top_k, config.top_p, eos_token_ids,
                                  tokenizer.pad_token_id)
        self.rollout_settings = RolloutSettings(sampling, tokenizer, config.group_size, config.inference_batch_per_device,
                                                config.loss.advantage_scale, old_logprobs=self.reuses_rollouts)
        self.optimizer = make_optimizer(config.optimizer)
        whole_groups = config.ppo_minibatch % config.group_size == 0
        self.loss_group_size = config.group_size if whole_groups and config.loss.drop_zero_advantage_groups else None
        # Minibatches of whole groups keep each prompt's G completions in adjacent rows (see
        # ``minibatches``), so the update can run each prompt once for all of them.
        self.prompt_share = config.group_size if whole_groups else 1
        self.update = jax.jit(self._update)

    def init_state(self, params) -> dict:
        params = self._place_params(params)
        return {"params": params, "opt_state": self._place_params(self.optimizer.init(params)), "rng": jax.random.key(self.config.seed),
                "step": 0}

    def _place_params(self, tree):
        """``tree`` (parameters, or state shaped like them) sharded over the mesh; as it is without one."""
        return tree if self.mesh is None or tree is None else shard_params(tree, self.mesh)

    def _place_batch(self, batch):
        """An update's arrays split over every device of the mesh by their leading (row) axis."""
        return batch if self.mesh is None or batch is None else shard_batch(batch, self.mesh)

    def _update(self, params, opt_state, batch: dict, ref_logprobs):
        sequences = batch["sequences"]
        prompt_width = sequences.shape[1] - batch["mask"].shape[1]

        def loss_fn(p):
            logits = completion_logits(p, self.model_config, sequences, batch["sequence_valid"], prompt_width, self.prompt_share)
            new = token_logprobs(logits, sequences[:, prompt_width:])
            old = batch["old_logprobs"] if "old_logprobs" in batch else jax.lax.stop_gradient(new)
            loss, metrics = grpo_loss(new, old, ref_logprobs, batch["advantages"], batch["mask"], self.config.loss, self.loss_group_size)
            return loss, {**metrics, "entropy": mean_token_entropy(logits, batch["mask"])}

        (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = self.optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, {**metrics, "grad_norm": optax.tree.norm(grads)}

    def step(self, state: dict, cursor: PromptCursor) -> tuple[dict, dict]:
        """One GRPO step: rollouts for the next prompts, then PPO epochs of minibatch updates."""
        started = time.perf_counter()
        c = self.config
        rng, rollout_key, shuffle_key = jax.random.split(state["rng"], 3)
        prompts = self.prompts.take(cursor.next(c.groups_per_batch))
        batch = rollout(state["params"], self.model_config, prompts, self.rollout_settings, self.reward, rollout_key)
        ref = None if c.loss.beta == 0 else np.asarray(completion_logprobs_jit(self.reference_params, self.model_config, batch.sequences,
                                                                                batch.sequence_valid, prompts.tokens.shape[1], c.group_size))
        params, opt_state, updates = state["params"], state["opt_state"], []
        update_started = time.perf_counter()
        for epoch in range(c.ppo_epochs):
            for rows in self.minibatches(jax.random.fold_in(shuffle_key, epoch), len(batch.rewards)):
                params, opt_state, metrics = self.update(params, opt_state, self._place_batch(batch.select(rows)),
                                                         self._place_batch(None if ref is None else ref[rows]))
                updates.append(metrics)
        jax.block_until_ready(params)
        update_seconds = time.perf_counter() - update_started
        new_state = {"params": params, "opt_state": opt_state, "rng": rng, "step": state["step"] + 1}
        return new_state, self.metrics(new_state, batch, updates, time.perf_counter() - started, update_seconds)

    @property
    def reuses_rollouts(self) -> bool:
        """Whether a rollout feeds more than one update (then its old log-probs must be computed up front)."""
        c = self.config
        return c.ppo_epochs > 1 or c.ppo_minibatch < c.groups_per_batch * c.group_size

    def minibatches(self, key: jax.Array, rows: int) -> list[np.ndarray]:
        """Shuffled minibatches of ``ppo_minibatch`` rows, made of whole groups when the sizes allow."""
        g, size = self.config.group_size, self.config.ppo_minibatch
        if size % g == 0:
            groups = np.asarray(jax.random.permutation(key, rows // g))
            order = (groups[:, None] * g + np.arange(g)[None, :]).reshape(-1)
        else:
            order = np.asarray(jax.random.permutation(key, rows))
        return [order[i : i + size] for i in range(0, rows, size)]

    @functools.cached_property
    def peak_flops(self) -> float:
        """The accelerator's datasheet bf16 peak, or on CPU a float32 matmul peak measured once (about 0.1 s)."""
        return device_peak_flops() or matmul_peak_flops()

    def update_mfu(self, batch: Rollout, seconds: float) -> float:
        """Model FLOPs utilisation of the PPO updates (forward + backward, each group's prompt once, every epoch)."""
        rows, width = batch.sequences.shape
        flops = grouped_update_flops(self.model_config, rows, width, batch.mask.shape[1], self.prompt_share)
        return mfu(self.config.ppo_epochs * flops, seconds, self.peak_flops)

    def metrics(self, state: dict, batch: Rollout, updates: list[dict], seconds: float, update_seconds: float) -> dict:
        errors = [e for e in batch.errors if e is not None]
        completion_tokens = int(batch.mask.sum())
        mean = lambda key: float(np.mean([float(u[key]) for u in updates]))
        return {
            "step": state["step"],
            "reward_mean": float(batch.rewards.mean()),
            "reward_std": float(batch.rewards.std()),
            "parse_rate": float(np.mean([p is not None for p in batch.parsed])),
            "format_rate": float(np.mean(batch.format_ok)),
            "mae": float(np.mean(errors)) if errors else None,
            "groups_with_signal": float(batch.kept.reshape(-1, self.config.group_size)[:, 0].mean()),
            "loss": mean("loss"),
            "kl": mean("kl_mean"),
            "clip_fraction": mean("clip_fraction"),
            "entropy": mean("entropy"),
            "grad_norm": mean("grad_norm"),
            "learning_rate": learning_rate_at(self.config.optimizer, state["step"] * len(updates)),
            "completion_tokens": completion_tokens,
            "tokens_per_second": completion_tokens / seconds,
            "step_seconds": seconds,
            "update_seconds": update_seconds,
            "mfu": self.update_mfu(batch, update_seconds),
        }


def train(trainer: GRPOTrainer, params, steps: int, checkpoints: TrainCheckpoints | None = None,
          on_step: Callable[[dict], None] = lambda metrics: None) -> dict:
    """Run until ``steps`` steps are done, resuming from the latest checkpoint when there is one."""
    state = trainer.init_state(params)
    cursor = PromptCursor(len(trainer.prompts), CursorState(seed=trainer.config.seed))
    if checkpoints is not None and checkpoints.latest_step() is not None:
        state, meta = checkpoints.restore(state)
        cursor = PromptCursor(len(trainer.prompts), CursorState(**meta["cursor"]))
    while state["step"] < steps:
        state, metrics = trainer.step(state, cursor)
        if checkpoints is not None:  # saved before it is reported; every save_every steps, and always the last
            checkpoints.save(state["step"], state, {"cursor": asdict(cursor.state)}, force=state["step"] == steps)
        on_step(metrics)
    return state
