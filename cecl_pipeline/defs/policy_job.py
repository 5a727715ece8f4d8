"""From the asset's config and the files on disk to the ``PolicyJob`` the training process runs."""

from pathlib import Path

from cecl_pipeline.grpo.job import PolicyJob
from cecl_pipeline.grpo.loss import GRPOLossConfig
from cecl_pipeline.grpo.optim import OptimizerConfig
from cecl_pipeline.grpo.policy_store import PolicyStore
from cecl_pipeline.grpo.rewards import RewardConfig
from cecl_pipeline.grpo.sft import SFTConfig
from cecl_pipeline.grpo.trainer import GRPOConfig
from cecl_pipeline.llm.checkpoint import MANIFEST
from cecl_pipeline.quarters import quarter_range, shift
from cecl_pipeline.settings import DataLayout


def build_job(quarter: str, config, base_dir: Path, layout: DataLayout, store_root: Path, wandb_dir: Path) -> PolicyJob:
    """The job for ``quarter``: prompt files of the ``train_quarters`` before it, and where to start from."""
    from cecl_pipeline.defs.policy import MAX_TRAIN_QUARTERS

    if config.members < 1 or config.steps < 1:
        raise ValueError(f"members and steps must be at least 1, got members={config.members}, steps={config.steps}")
    if not 1 <= config.train_quarters <= MAX_TRAIN_QUARTERS:
        raise ValueError(f"train_quarters must be between 1 and {MAX_TRAIN_QUARTERS}, got {config.train_quarters}")
    window = quarter_range(shift(quarter, -config.train_quarters), shift(quarter, -1))
    files = [layout.prompts_parquet(q) for q in window if layout.prompts_parquet(q).is_file()]
    if not files:
        raise FileNotFoundError(f"no nco_prompts for {window[0]}–{window[-1]} in {layout.prompts_parquet(window[-1]).parent}: "
                                f"materialize nco_prompts for those quarters first (cecl materialize --select nco_prompts --first {window[0]} --last {window[-1]})")
    if not (base_dir / MANIFEST).is_file():
        raise FileNotFoundError(f"{base_dir}: no converted checkpoint; materialize jax_checkpoint first (cecl convert-model)")
    store = PolicyStore(store_root)
    previous = store.member_dirs(shift(quarter, -1))
    return PolicyJob(
        quarter=quarter,
        prompt_files=tuple(str(f) for f in files),
        base_dirs=tuple(str(d) for d in previous) or (str(base_dir),),
        store_root=str(store_root),
        steps=config.steps,
        checkpoint_every=config.checkpoint_every,
        members=config.members,
        warm_started=bool(previous),
        grpo=grpo_config(config),
        sft=SFTConfig(steps=config.sft_steps, batch_size=config.sft_batch_size, learning_rate=config.sft_learning_rate),
        wandb_dir=str(wandb_dir) if config.wandb else "",
    )


def grpo_config(config) -> GRPOConfig:
    """The asset's flat config as the trainer's nested one (constructors validate every value)."""
    return GRPOConfig(
        env=config.env,
        groups_per_batch=config.groups_per_batch,
        group_size=config.group_size,
        ppo_minibatch=config.ppo_minibatch,
        ppo_epochs=config.ppo_epochs,
        num_generation_tokens=config.num_generation_tokens,
        inference_batch_per_device=config.inference_batch_per_device,
        prompt_length=config.prompt_length,
        temperature=config.temperature,
        seed=config.seed,
        loss=GRPOLossConfig(epsilon_low=config.epsilon_low, epsilon_high=config.epsilon_high, beta=config.beta,
                            aggregation=config.aggregation, advantage_scale=config.advantage_scale,
                            drop_zero_advantage_groups=config.drop_zero_advantage_groups),
        optimizer=OptimizerConfig(learning_rate=config.learning_rate, warmup_steps=config.warmup_steps, total_steps=max(config.steps, config.warmup_steps + 1)),
        rewards=RewardConfig(accuracy_scale=config.accuracy_scale, penalty=config.penalty, strict_single=config.env == "nco_single"),
    )
