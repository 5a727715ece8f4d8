"""Stage 4: ``grpo_policy[Q]``, the GRPO-tuned policy that serves quarter Q, trained in its own process.

It trains on the prompts of the quarters before Q (never Q or later: asserted by the loader) and
starts from ``grpo_policy[Q−1]`` when that quarter's policy exists, otherwise from ``jax_checkpoint``
after a supervised warm-start. The work runs through Dagster Pipes in a subprocess, in the ``gpu``
pool (limit 1 in dagster.yaml), so two trainings never share an accelerator. A killed training process
is restarted in the same run, and re-materializing after a crash resumes from the last train checkpoint.
"""

import os
import re
import sys
import warnings
from pathlib import Path

import dagster as dg
from dagster._core.errors import DagsterPipesExecutionError  # not exported at the top level in 1.13

from cecl_pipeline.defs.metadata import refuse
from cecl_pipeline.defs.model import ModelCheckpoints, jax_checkpoint
from cecl_pipeline.defs.partitions import quarter_of, quarterly
from cecl_pipeline.defs.prompts import nco_prompts
from cecl_pipeline.defs.resources import DataPaths
from cecl_pipeline.quarters import shift
from cecl_pipeline.settings import DEFAULT_TRAIN_QUARTERS, PROJECT_ROOT, checkpoint_dir, results_dir

MAX_TRAIN_QUARTERS = 12
# A training process killed from outside (the OOM killer, a preempted node) is restarted in the same
# run and resumes from its checkpoint; one that fails on its own error is not: it would fail again.
MAX_TRAINING_RESTARTS = 2
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    TRAINING_WINDOW = dg.TimeWindowPartitionMapping(start_offset=-MAX_TRAIN_QUARTERS, end_offset=-1, allow_nonexistent_upstream_partitions=True)
    PREVIOUS_QUARTER = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True)


class JaxRuntime(dg.ConfigurableResource):
    """How the training process runs JAX: platform, no GPU memory preallocation, deterministic ops, a compilation cache."""

    platform: str = ""  # "" lets JAX pick (GPU when there is one); "cpu", "cuda" or "tpu" to force
    preallocate: bool = False  # JAX would otherwise grab 75% of GPU memory up front
    deterministic: bool = True
    compilation_cache_dir: str = ""  # empty: .cache/jax in the project

    def env(self) -> dict[str, str]:
        env = {
            "XLA_PYTHON_CLIENT_PREALLOCATE": "true" if self.preallocate else "false",
            "JAX_COMPILATION_CACHE_DIR": self.compilation_cache_dir or str(PROJECT_ROOT / ".cache" / "jax"),
        }
        if self.platform:
            env["JAX_PLATFORMS"] = self.platform
        if self.deterministic:
            env["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_gpu_deterministic_ops=true".strip()
        return env

    def apply_in_process(self) -> None:
        """For assets that run JAX in the run's own process: set what JAX reads at import, unless the user already has."""
        for name, value in self.env().items():
            os.environ.setdefault(name, value)


class PolicyConfig(dg.Config):
    """The seed's knobs (one to one), the environment, the ensemble size and the warm-start."""

    env: str = "nco"  # nco, nco_single or nco_enhanced
    members: int = 1  # an ensemble of K policies, seeds seed..seed+K−1
    steps: int = 16  # GRPO steps per member
    checkpoint_every: int = 4  # GRPO steps between train checkpoints (the last step is always saved)
    train_quarters: int = DEFAULT_TRAIN_QUARTERS  # prompt quarters before Q to train on (at most 12)
    groups_per_batch: int = 2
    group_size: int = 8
    ppo_minibatch: int = 16
    ppo_epochs: int = 1
    num_generation_tokens: int = 24
    inference_batch_per_device: int = 16
    prompt_length: int = 1024
    temperature: float = 1.0
    learning_rate: float = 1e-4  # 2e-4 collapsed the warm-started tiny policy on one of two machines (benchmarks/RESULTS.md)
    warmup_steps: int = 2
    beta: float = 0.0
    epsilon_low: float = 0.2
    epsilon_high: float = 0.28
    aggregation: str = "token_mean"
    advantage_scale: str = "std"
    drop_zero_advantage_groups: bool = False
    accuracy_scale: float = 1.0  # pp of error at which the accuracy reward falls to 1/e
    penalty: float = 1.0  # reward lost for a missing, unparseable or implausible answer
    seed: int = 0
    sft_steps: int = 200  # supervised warm-start before GRPO on a cold start (0: none); 2.5 epochs of the default's 1,280 prompts
    sft_batch_size: int = 16
    sft_learning_rate: float = 1e-3
    wandb: bool = True  # offline under results/wandb unless WANDB_API_KEY and WANDB_PROJECT are set


def policy_store_root(models: ModelCheckpoints) -> Path:
    """Where grpo_policy writes: one store per converted base model."""
    return checkpoint_dir() / "grpo" / models.jax_path().name


def knob_overrides(items: list[str]) -> dict:
    """``["steps=40", "wandb=false"]`` → PolicyConfig values of the right types; unknown knobs are refused."""
    knobs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in PolicyConfig.model_fields:
            raise ValueError(f"{item!r}: expected KNOB=VALUE with KNOB one of {', '.join(PolicyConfig.model_fields)}")
        kind = type(PolicyConfig.model_fields[name].default)
        knobs[name] = value.strip().lower() in ("1", "true", "yes") if kind is bool else kind(value)
    return knobs


@dg.asset(
    group_name="model",
    kinds={"jax", "orbax"},
    partitions_def=quarterly,
    pool="gpu",
    deps=[
        jax_checkpoint,
        dg.AssetDep(nco_prompts, partition_mapping=TRAINING_WINDOW),
        dg.AssetDep(dg.AssetKey("grpo_policy"), partition_mapping=PREVIOUS_QUARTER),
    ],
    description="The GRPO-tuned Qwen3 policy for quarter Q: trained on targets before Q, warm-started from grpo_policy[Q−1].",
)
def grpo_policy(context: dg.AssetExecutionContext, config: PolicyConfig, models: ModelCheckpoints, paths: DataPaths,
                jax_runtime: JaxRuntime, pipes_subprocess_client: dg.PipesSubprocessClient) -> dg.MaterializeResult:
    from cecl_pipeline.defs.policy_job import build_job

    quarter = quarter_of(context)
    try:
        job = build_job(quarter, config, models.jax_path(), paths.layout(), policy_store_root(models),
                        results_dir() / "wandb")
    except (FileNotFoundError, ValueError) as error:
        raise refuse(error) from None
    context.log.info(f"grpo_policy {quarter}: training on {', '.join(Path(p).stem for p in job.prompt_files)}; "
                     f"starting from {'grpo_policy ' + shift(quarter, -1) if job.warm_started else 'jax_checkpoint'}")
    if context.retry_number:
        context.log.warning(f"grpo_policy {quarter}: restart {context.retry_number} of {MAX_TRAINING_RESTARTS} after the training "
                            "process was killed; each member resumes from its last checkpoint")
    command = [sys.executable, "-m", "cecl_pipeline.defs.grpo_process"]
    with warnings.catch_warnings():
        # Dagster 1.13.27's own Pipes client warns about its preview API and its own use of context.run_id.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            invocation = pipes_subprocess_client.run(command=command, context=context, extras={"job": job.to_dict()}, env=jax_runtime.env())
        except DagsterPipesExecutionError as error:
            if killed_by_signal(error):
                raise dg.RetryRequested(max_retries=MAX_TRAINING_RESTARTS, seconds_to_wait=2) from error
            raise
    return invocation.get_materialize_result()


def killed_by_signal(error: Exception) -> bool:
    """Whether Pipes reports the training process as ended by a signal (negative exit code), not by its own error."""
    code = re.search(r"failed with code (-?\d+)", str(error))
    return code is not None and int(code.group(1)) < 0
