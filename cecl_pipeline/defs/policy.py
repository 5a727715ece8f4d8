"""Stage 4: ``grpo_policy[Q]``, the GRPO-tuned policy that serves quarter Q, trained in its own process.

It trains on the prompts of the quarters before Q (never Q or later: asserted by the loader) and
starts from ``grpo_policy[Q−1]`` when that quarter's policy exists, otherwise from ``jax_checkpoint``
after a supervised warm-start. The work runs through Dagster Pipes in a subprocess, in the ``gpu``
pool (limit 1 in dagster.yaml), so two trainings never share an accelerator. A killed training process
is restarted in the same run, and re-materializing after a crash resumes from the last train checkpoint.
"""

import re
import sys
import warnings
from pathlib import Path

import dagster as dg
import pydantic
from dagster._core.errors import DagsterPipesExecutionError  # not exported at the top level in 1.13

from cecl_pipeline.defs.metadata import refuse
from cecl_pipeline.defs.model_assets import ModelCheckpoints, jax_checkpoint
from cecl_pipeline.defs.partitions import quarter_of, quarterly
from cecl_pipeline.defs.prompt_assets import nco_prompts
from cecl_pipeline.defs.resources import DataPaths, JaxRuntime
from cecl_pipeline.grpo.knobs import KNOBS, MAX_TRAIN_QUARTERS, KnobError
from cecl_pipeline.grpo.policy_store import PolicyStore, store_for
from cecl_pipeline.quarters import shift
from cecl_pipeline.settings import checkpoint_dir, results_dir

# A training process killed from outside (the OOM killer, a preempted node) is restarted in the same
# run and resumes from its checkpoint; one that fails on its own error is not: it would fail again.
MAX_TRAINING_RESTARTS = 2
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    TRAINING_WINDOW = dg.TimeWindowPartitionMapping(start_offset=-MAX_TRAIN_QUARTERS, end_offset=-1, allow_nonexistent_upstream_partitions=True)
    PREVIOUS_QUARTER = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True)

# Every training knob (grpo/knobs.py) as run config, with its default and meaning shown in the launchpad.
PolicyConfig = pydantic.create_model(
    "PolicyConfig",
    __base__=dg.Config,
    __doc__="grpo_policy's knobs: one per entry of cecl_pipeline.grpo.knobs.KNOBS, with the same default.",
    **{k.name: (k.kind, pydantic.Field(k.default, description=f"{k.meaning} ({k.accepts()})")) for k in KNOBS},
)


def policy_store(models: ModelCheckpoints) -> PolicyStore:
    """Where grpo_policy writes: one store per converted base model."""
    return store_for(checkpoint_dir(), models.jax_path().name)


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
    from cecl_pipeline.grpo.training_job import PolicyJob

    quarter = quarter_of(context)
    try:
        job = PolicyJob.for_quarter(quarter, config.model_dump(), paths.layout().prompts_parquet, models.jax_path(), policy_store(models),
                                    results_dir() / "wandb")
    except (FileNotFoundError, KnobError, ValueError) as error:
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
