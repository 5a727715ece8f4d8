"""Stage 5: ``walkforward_forecasts[Q]`` (policy[Q] and the baselines on prompts[Q]) and ``walkforward_report`` over all quarters."""

import dagster as dg

from cecl_pipeline.challengers.names import CHALLENGERS
from cecl_pipeline.defs.metadata import file_metadata, markdown_table, refuse, report_metadata
from cecl_pipeline.defs.model_assets import ModelCheckpoints
from cecl_pipeline.defs.partitions import quarter_of, quarterly
from cecl_pipeline.defs.policy import grpo_policy, policy_store
from cecl_pipeline.defs.prompt_assets import nco_prompts
from cecl_pipeline.defs.resources import DataPaths, JaxRuntime
from cecl_pipeline.settings import results_dir


class WalkforwardConfig(dg.Config):
    samples: int = 8  # completions per prompt and ensemble member
    temperature: float = 1.0
    inference_batch: int = 64  # rows per sampler call
    seed: int = 0
    baselines: list[str] = list(CHALLENGERS)  # the challengers fitted beside the policy (cecl_pipeline.challengers)


@dg.asset(
    group_name="evaluation",
    kinds={"jax", "parquet"},
    partitions_def=quarterly,
    pool="gpu",
    deps=[grpo_policy, nco_prompts],
    description="grpo_policy[Q] sampled on nco_prompts[Q] (never a policy trained on Q or later), beside the statistical challengers; "
                "every completion kept as an audit trail.",
)
def walkforward_forecasts(context: dg.AssetExecutionContext, config: WalkforwardConfig, paths: DataPaths, models: ModelCheckpoints,
                          jax_runtime: JaxRuntime) -> dg.MaterializeResult:
    from cecl_pipeline.defs.walkforward_run import forecast_policy_quarter

    jax_runtime.apply_in_process()
    quarter = quarter_of(context)
    try:
        result = forecast_policy_quarter(quarter, config, paths.layout(), policy_store(models), context.log.info)
    except (FileNotFoundError, ValueError) as error:
        raise refuse(error) from None
    metrics = result.metrics()
    policy = metrics.set_index("model").loc["grpo_policy"]
    context.log.info(f"walkforward_forecasts {quarter}: policy MAE {policy['mae']:.3f} pp, parsed {result.parse_rate:.0%} "
                     f"({result.completions} completions, {result.seconds:.0f} s)")
    return dg.MaterializeResult(metadata={
        "quarter": quarter,
        "series": int(policy["rows"]),
        "completions": result.completions,
        "parse_rate": dg.MetadataValue.float(round(result.parse_rate, 4)),
        "policy_mae": dg.MetadataValue.float(round(float(policy["mae"]), 4)),  # NaN when no answer parsed
        "metrics": markdown_table(metrics.round(4), rows=len(metrics)),
        "seconds": round(result.seconds, 1),
        "audit_trail": dg.MetadataValue.path(str(result.completions_path)),
        **file_metadata(result.forecasts_path),
    })


@dg.asset(
    group_name="evaluation",
    kinds={"matplotlib", "html"},
    deps=[walkforward_forecasts],
    description="Every materialized quarter of walkforward_forecasts: model vs challengers, stress windows, charts; "
                "written under results/walkforward.",
)
def walkforward_report(context: dg.AssetExecutionContext, paths: DataPaths) -> dg.MaterializeResult:
    from cecl_pipeline.defs.walkforward_run import report_all_quarters
    from cecl_pipeline.forecast.report import headline

    try:
        report = report_all_quarters(paths.layout(), results_dir() / "walkforward")
    except FileNotFoundError as error:
        raise refuse(error) from None
    context.log.info(headline(report))
    return dg.MaterializeResult(metadata={**report_metadata(report), **policy_skill_metadata(report)})


def policy_skill_metadata(report) -> dict:
    """The policy's skill figures and its band's coverage before and after calibration: floats rounded to 4 places, names as strings."""
    from cecl_pipeline.forecast.skill import policy_figures

    return {name: value if isinstance(value, str) else dg.MetadataValue.float(round(value, 4))
            for name, value in policy_figures(report.overall).items()}
