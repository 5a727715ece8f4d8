"""Jobs: the named slices of the graph that schedules, sensors, backfills and the CLI launch."""

import dagster as dg

from cecl_pipeline.defs.allowance_assets import cecl_allowance
from cecl_pipeline.defs.forward_assets import forward_forecasts, forward_scores
from cecl_pipeline.defs.model_assets import hf_checkpoint, jax_checkpoint
from cecl_pipeline.defs.panel_assets import nco_panel
from cecl_pipeline.defs.policy import grpo_policy
from cecl_pipeline.defs.prompt_assets import nco_prompts
from cecl_pipeline.defs.walkforward_assets import walkforward_forecasts, walkforward_report

quarterly_retrain = dg.define_asset_job(
    "quarterly_retrain",
    selection=dg.AssetSelection.assets(nco_panel, nco_prompts, grpo_policy, walkforward_forecasts, walkforward_report),
    description="One quarter end to end: panel → prompts → policy → walk-forward forecasts, then the report over all quarters.",
)

ingest_quarter = dg.define_asset_job(
    "ingest_quarter",
    selection=dg.AssetSelection.assets(nco_panel, nco_prompts),
    description="A quarter's drop file validated into nco_panel, and its prompts.",
)

convert_model = dg.define_asset_job(
    "convert_model",
    selection=dg.AssetSelection.assets(hf_checkpoint, jax_checkpoint),
    description="The HF checkpoint (or the embedded default) converted to JAX.",
)

walkforward = dg.define_asset_job(
    "walkforward",
    selection=dg.AssetSelection.assets(walkforward_forecasts, walkforward_report),
    description="Walk-forward forecasts for a quarter (backfill it over a range), then the report.",
)

quarter_end = dg.define_asset_job(
    "quarter_end",
    selection=dg.AssetSelection.assets(forward_forecasts, cecl_allowance, forward_scores),
    description="What a bank books at quarter-end Q: the forecast for the quarters after Q, the allowance on it, then the scores "
                "of every forward forecast whose quarters have landed.",
)

train_policy = dg.define_asset_job(
    "train_policy",
    selection=dg.AssetSelection.assets(grpo_policy),
    description="grpo_policy for one quarter, trained on every target before it; the quarter-end sensor runs it for the quarter "
                "after the newest accepted panel.",
)

JOBS = [quarterly_retrain, ingest_quarter, convert_model, walkforward, train_policy, quarter_end]
