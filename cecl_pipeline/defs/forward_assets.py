"""Stage 6, first half: ``forward_forecasts[Q]``, what quarter-end Q expects for Q+1 … Q+H, and ``forward_scores`` once actuals land.

Keyed by the forecast origin Q, the quarter-end a bank books at: forward_forecasts[Q] reads the
accepted panels up to Q and grpo_policy[Q+1], the policy trained on every target up to Q. It needs
nothing dated after Q, so it runs as soon as Q's panel is accepted; the partitions reach one quarter
past the last ended one (``end_offset=1``) so that grpo_policy[Q+1] exists for the latest Q. When
Q+1's panel is accepted later, forward_scores scores the forecast as it was written.
"""

import warnings

import dagster as dg

from cecl_pipeline.challengers.names import CHALLENGERS
from cecl_pipeline.defs.metadata import file_metadata, markdown_table, refuse
from cecl_pipeline.defs.model_assets import ModelCheckpoints
from cecl_pipeline.defs.panel_assets import nco_panel
from cecl_pipeline.defs.partitions import quarter_of, quarterly
from cecl_pipeline.defs.policy import grpo_policy, policy_store
from cecl_pipeline.defs.resources import DataPaths, JaxRuntime
from cecl_pipeline.defs.walkforward_assets import WalkforwardConfig
from cecl_pipeline.settings import DEFAULT_HORIZON, DEFAULT_LOOKBACK, DEFAULT_PATHS, results_dir

with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    HISTORY_TO_ORIGIN = dg.TimeWindowPartitionMapping(start_offset=-(DEFAULT_LOOKBACK - 1), end_offset=0,
                                                      allow_nonexistent_upstream_partitions=True)
    NEXT_QUARTER = dg.TimeWindowPartitionMapping(start_offset=1, end_offset=1, allow_nonexistent_upstream_partitions=True)


# AR(1)–GARCH(1,1) and ARIMA(1,1,0) are fitted series by series by statsmodels/arch, about 4 s per forecast quarter each
# on 160 series (2 cores): 16 s each over the default 4 quarters, as long as every other challenger together. On the
# Fed files (2010–2015) AR–GARCH trailed (MAE 0.247) and ARIMA(1,1,0) tied persistence (0.184 each), which stays here;
# the walk-forward keeps scoring both. auto_arima, auto_ets, theta and their combination stay.
SLOW_FITS = ("ar1_garch11", "arima_110")
FORWARD_CHALLENGERS = [name for name in CHALLENGERS if name not in SLOW_FITS]


class ForwardConfig(WalkforwardConfig):
    horizon: int = DEFAULT_HORIZON  # quarters past the origin, 1–12: the reasonable-and-supportable horizon
    samples: int = DEFAULT_PATHS  # sampled paths per series and member
    baselines: list[str] = FORWARD_CHALLENGERS  # add ar1_garch11 or arima_110 here to forecast with them too
    scenarios: list[str] = []  # stored scenario keys (raw/scenarios/<key>.csv); empty: every one whose path starts at Q+1


@dg.asset(
    group_name="forecast",
    kinds={"jax", "parquet"},
    partitions_def=quarterly,
    pool="gpu",
    deps=[dg.AssetDep(nco_panel, partition_mapping=HISTORY_TO_ORIGIN), dg.AssetDep(grpo_policy, partition_mapping=NEXT_QUARTER)],
    description="Made at quarter-end Q, with no actuals after Q: Q+1 … Q+H for every series, as sampled paths of grpo_policy[Q+1] "
                "(trained on every target up to Q) with 10/50/90 quantiles per quarter, beside the challengers' paths.",
)
def forward_forecasts(context: dg.AssetExecutionContext, config: ForwardConfig, paths: DataPaths, models: ModelCheckpoints,
                      jax_runtime: JaxRuntime) -> dg.MaterializeResult:
    from cecl_pipeline.defs.forward_run import forecast_from_origin, policy_path_table

    jax_runtime.apply_in_process()
    origin = quarter_of(context)
    try:
        result = forecast_from_origin(origin, config, paths.layout(), policy_store(models), context.log.info)
    except (FileNotFoundError, ValueError) as error:
        raise refuse(error) from None
    quarters = sorted(result.forecasts["quarter"].unique())
    context.log.info(f"forward_forecasts {origin}: {quarters[0]}–{quarters[-1]}, parsed {result.parse_rate:.0%} "
                     f"({result.completions} path steps, {result.seconds:.0f} s) → {result.forecasts_path}")
    return dg.MaterializeResult(metadata={
        "origin": origin,
        "quarters": f"{quarters[0]}–{quarters[-1]}",
        "series": int(result.forecasts[["entity_id", "segment"]].drop_duplicates().shape[0]),
        "scenarios": ", ".join(result.forecasts["scenario"].unique()),
        "path_steps": result.completions,
        "parse_rate": dg.MetadataValue.float(round(result.parse_rate, 4)),
        "policy_by_segment": markdown_table(policy_path_table(result.forecasts).round(4), rows=60),
        "seconds": round(result.seconds, 1),
        "audit_trail": dg.MetadataValue.path(str(result.paths_path)),
        **file_metadata(result.forecasts_path),
    })


@dg.asset(
    group_name="forecast",
    kinds={"pandas", "csv"},
    deps=[forward_forecasts, nco_panel],
    description="Every forward forecast whose quarters now have accepted actuals, scored as written (never re-made): "
                "the walk-forward's metrics per model and horizon, in results/forward/scores.csv.",
)
def forward_scores(context: dg.AssetExecutionContext, paths: DataPaths) -> dg.MaterializeResult:
    from cecl_pipeline.defs.forward_run import score_all_origins

    try:
        scores = score_all_origins(paths.layout(), results_dir() / "forward")
    except FileNotFoundError as error:
        raise refuse(error) from None
    policy = scores.metrics[scores.metrics["model"] == "grpo_policy"].set_index(["scenario", "horizon"])["mae"]
    context.log.info(f"forward_scores: {len(scores.scored)} rows scored from {len(scores.origins)} origin(s); "
                     f"policy MAE by scenario and horizon {', '.join(f'{s} h{h}: {m:.3f}' for (s, h), m in policy.items()) or 'none yet'}")
    return dg.MaterializeResult(metadata={
        "origins": ", ".join(scores.origins),
        "scored_rows": len(scores.scored),
        "metrics": markdown_table(scores.metrics.round(4), rows=len(scores.metrics)),
        "scores": dg.MetadataValue.path(str(scores.metrics_path)),
        **file_metadata(scores.scored_path),
    })
