"""``debug_rollouts[Q]``: a handful of Q's prompts answered by the policy serving Q, with the training reward and advantages.

Off the main line of the graph (no job runs it): `cecl debug-nco --first Q` materializes it when a
run's learning curve looks wrong, and the table shows in the web UI and the terminal.
"""

from pathlib import Path

import dagster as dg

from cecl_pipeline.defs.metadata import refuse
from cecl_pipeline.defs.model_assets import ModelCheckpoints, jax_checkpoint
from cecl_pipeline.defs.partitions import quarter_of, quarterly
from cecl_pipeline.defs.policy import grpo_policy, policy_store
from cecl_pipeline.defs.prompt_assets import nco_prompts
from cecl_pipeline.defs.resources import DataPaths, JaxRuntime
from cecl_pipeline.settings import results_dir


class DebugConfig(dg.Config):
    prompts: int = 4  # the first N prompts of Q (in prompt_id order)
    samples: int = 8  # completions per prompt: one GRPO group
    temperature: float = 1.0
    max_new_tokens: int = 0  # 0: the policy's own num_generation_tokens (grpo_policy's default for the base model)
    env: str = ""  # empty: the policy's own env (grpo_policy's default for the base model)
    seed: int = 0


def debug_dir(quarter: str) -> Path:
    return results_dir() / "debug-nco" / quarter


@dg.asset(
    group_name="debug",
    kinds={"jax", "parquet"},
    partitions_def=quarterly,
    pool="gpu",
    deps=[grpo_policy, jax_checkpoint, nco_prompts],
    description="The first few prompts of Q answered by grpo_policy[Q] member 0 (jax_checkpoint before any training), "
                "each completion with its parsed value, reward and group advantage; written under results/debug-nco.",
)
def debug_rollouts(context: dg.AssetExecutionContext, config: DebugConfig, paths: DataPaths, models: ModelCheckpoints,
                   jax_runtime: JaxRuntime) -> dg.MaterializeResult:
    from cecl_pipeline.envs.registry import get_env
    from cecl_pipeline.forecast.debug_rollouts import debug_rollouts as rollouts_of
    from cecl_pipeline.forecast.debug_rollouts import rollouts_markdown, serving_policy, summary_line, write_rollouts
    from cecl_pipeline.forecast.policy_samples import SampleSettings
    from cecl_pipeline.grpo.rewards import ForecastReward
    from cecl_pipeline.grpo.trainer import GRPOConfig

    jax_runtime.apply_in_process()
    quarter = quarter_of(context)
    try:
        policy = serving_policy(policy_store(models), quarter, models.jax_path(), GRPOConfig())
        knobs = policy.knobs
        env = get_env(config.env or knobs.env)
        settings = SampleSettings(samples=config.samples, temperature=config.temperature, seed=config.seed,
                                  max_new_tokens=config.max_new_tokens or knobs.num_generation_tokens, prompt_length=knobs.prompt_length)
        reward = ForecastReward(env.answer, knobs.rewards)
        rollouts = rollouts_of(policy.checkpoint, paths.layout().prompts_parquet(quarter), env, quarter, settings, config.prompts, reward,
                               knobs.loss.advantage_scale, context.log.info)
    except (FileNotFoundError, ValueError) as error:
        raise refuse(error) from None
    directory = write_rollouts(rollouts, debug_dir(quarter), f"debug-nco {quarter}: {policy.checkpoint}")
    summary = summary_line(rollouts)
    context.log.info(f"debug_rollouts {quarter} ({policy.checkpoint}): {summary}")
    return dg.MaterializeResult(metadata={
        "checkpoint": str(policy.checkpoint),
        "summary": summary,
        "rollouts": dg.MetadataValue.md(rollouts_markdown(rollouts)),
        "path": dg.MetadataValue.path(str(directory / "rollouts.md")),
    })
