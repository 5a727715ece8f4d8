"""Stage 3: 12 quarters of accepted panel history → one prompt per series and environment for quarter Q."""


import warnings

import dagster as dg
import pandas as pd

from cecl_pipeline.defs.metadata import file_metadata, markdown_table, refuse
from cecl_pipeline.defs.panel_assets import macro_history, nco_panel
from cecl_pipeline.defs.partitions import quarter_of, quarterly
from cecl_pipeline.defs.resources import DataPaths
from cecl_pipeline.envs.prompt_dataset import PromptRequest, build_prompt_dataset
from cecl_pipeline.envs.registry import ENVS
from cecl_pipeline.settings import DEFAULT_LOOKBACK

with warnings.catch_warnings():
    # allow_nonexistent_upstream_partitions is marked beta; the first 12 partitions have no full history and need it.
    warnings.simplefilter("ignore", dg.BetaWarning)
    HISTORY_WINDOW = dg.TimeWindowPartitionMapping(start_offset=-DEFAULT_LOOKBACK, end_offset=0, allow_nonexistent_upstream_partitions=True)


class PromptsConfig(dg.Config):
    envs: list[str] = list(ENVS)  # names from cecl_pipeline.envs.registry
    tokenizer_dir: str = ""  # a model tokenizer folder whose chat template formats the prompts; empty = plain text
    enable_thinking: bool = False


@dg.asset(
    group_name="panel",
    kinds={"pyarrow", "parquet"},
    partitions_def=quarterly,
    deps=[
        dg.AssetDep(nco_panel, partition_mapping=HISTORY_WINDOW),
        macro_history,
    ],
    description="Prompts for target quarter Q from the 12 quarters before it (never later), one per series and environment.",
)
def nco_prompts(context: dg.AssetExecutionContext, config: PromptsConfig, paths: DataPaths) -> dg.MaterializeResult:
    quarter = quarter_of(context)
    request = PromptRequest(quarter, tuple(config.envs), config.tokenizer_dir or None, config.enable_thinking)
    try:
        result = build_prompt_dataset(paths.layout(), request)
    except (FileNotFoundError, ValueError) as error:
        raise refuse(error) from None
    for warning in result.warnings:
        context.log.warning(warning)
    context.log.info(f"nco_prompts {quarter}: {result.examples} examples × {len(config.envs)} env(s) → {result.path}")
    gaps = result.gaps
    return dg.MaterializeResult(
        metadata={
            "target_quarter": quarter,
            "history": f"{result.history_quarters[0]}–{result.history_quarters[-1]}",
            "envs": ", ".join(config.envs),
            "chat_template": result.template_name,
            "series_with_target": result.examples + len(gaps),
            "examples_per_env": result.examples,
            "rows": result.rows,
            "series_with_gaps": len(gaps),
            "series_without_target": result.without_target,
            "gaps": markdown_table(gaps if len(gaps) else pd.DataFrame({"entity_id": [], "segment": [], "missing_quarters": []}), rows=20),
            "preview": dg.MetadataValue.md(f"```\n{result.sample_prompt}\n```"),
            **file_metadata(result.path),
        }
    )
