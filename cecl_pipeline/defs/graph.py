"""The asset graph: the one Dagster Definitions object, with every asset, job, schedule, sensor and resource."""

import dagster as dg

from cecl_pipeline.defs.allowance_assets import cecl_allowance
from cecl_pipeline.defs.debug import debug_rollouts
from cecl_pipeline.defs.forward_assets import forward_forecasts, forward_scores
from cecl_pipeline.defs.jobs import JOBS
from cecl_pipeline.defs.model_assets import ModelCheckpoints, hf_checkpoint, jax_checkpoint
from cecl_pipeline.defs.operations import checkpoint_cleanup, device_status, policy_validation, training_progress
from cecl_pipeline.defs.panel_assets import macro_history, nco_panel
from cecl_pipeline.defs.policy import grpo_policy
from cecl_pipeline.defs.prompt_assets import nco_prompts
from cecl_pipeline.defs.quarter_end_sensor import quarter_end_sensor
from cecl_pipeline.defs.resources import DataPaths, JaxRuntime
from cecl_pipeline.defs.schedules import quarterly_retrain_schedule
from cecl_pipeline.defs.sensors import new_drop_file_sensor
from cecl_pipeline.defs.walkforward_assets import walkforward_forecasts, walkforward_report

defs = dg.Definitions(
    assets=[hf_checkpoint, jax_checkpoint, macro_history, nco_panel, nco_prompts, grpo_policy, walkforward_forecasts,
            walkforward_report, forward_forecasts, forward_scores, cecl_allowance,
            debug_rollouts, device_status, training_progress, checkpoint_cleanup, policy_validation],
    jobs=JOBS,
    schedules=[quarterly_retrain_schedule],
    sensors=[new_drop_file_sensor, quarter_end_sensor],
    resources={
        "paths": DataPaths(),
        "models": ModelCheckpoints(),
        "jax_runtime": JaxRuntime(),
        "pipes_subprocess_client": dg.PipesSubprocessClient(),
    },
)
