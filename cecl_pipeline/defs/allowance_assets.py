"""Stage 6, second half: ``cecl_allowance[Q]``, the allowance booked at quarter-end Q from forward_forecasts[Q] and the portfolio.

Keyed, like the forecast it books, by the quarter-end Q. It also reads cecl_allowance[Q−1] when that
quarter was booked, for the roll-forward.
"""

import dagster as dg

from cecl_pipeline.defs.booking_files import booking_inputs
from cecl_pipeline.defs.forward_assets import forward_forecasts
from cecl_pipeline.defs.metadata import file_metadata, markdown_table, refuse
from cecl_pipeline.defs.partitions import quarter_of, quarterly
from cecl_pipeline.defs.policy import PREVIOUS_QUARTER
from cecl_pipeline.defs.resources import DataPaths
from cecl_pipeline.panel.errors import DropFileError
from cecl_pipeline.settings import DEFAULT_REVERSION_QUARTERS, results_dir


class AllowanceConfig(dg.Config):
    reversion_quarters: int = DEFAULT_REVERSION_QUARTERS  # after the forecast horizon, straight-line to the long-run mean; 0: at once


@dg.asset(
    group_name="allowance",
    kinds={"pandas", "parquet", "html"},
    partitions_def=quarterly,
    deps=[forward_forecasts, dg.AssetDep(dg.AssetKey("cecl_allowance"), partition_mapping=PREVIOUS_QUARTER)],
    description="The CECL allowance at quarter-end Q: WARM lifetime loss per pool of raw/portfolio/<Q>.csv on the forward forecast "
                "and its reversion, overlays from raw/overlays/<Q>.csv listed apart, and the roll-forward from Q−1; report under results/allowance/<Q>.",
)
def cecl_allowance(context: dg.AssetExecutionContext, config: AllowanceConfig, paths: DataPaths) -> dg.MaterializeResult:
    from cecl_pipeline.defs.allowance_run import book_quarter
    from cecl_pipeline.forecast.report import png_data_uri

    quarter = quarter_of(context)
    inputs = booking_inputs(paths.layout(), quarter)  # hashed before booking: a file replaced meanwhile shows as changed
    try:
        booked = book_quarter(quarter, config.reversion_quarters, paths.layout(), results_dir() / "allowance" / quarter)
    except (FileNotFoundError, ValueError, DropFileError) as error:
        raise refuse(error) from None
    booking = booked.booking
    total = booking.by_segment.set_index("segment").loc["total"]
    context.log.info(f"cecl_allowance {quarter}: {total['allowance']:,.0f} ({total['allowance_pct_of_cost']:.2f}% of amortized cost), "
                     f"overlays {total['overlays']:,.0f} → {booked.report.html_path}")
    return dg.MaterializeResult(metadata={
        "quarter": quarter,
        "allowance": dg.MetadataValue.float(round(float(total["allowance"]), 2)),
        "allowance_pct_of_cost": dg.MetadataValue.float(round(float(total["allowance_pct_of_cost"]), 4)),
        "overlays_total": dg.MetadataValue.float(round(float(total["overlays"]), 2)),
        "pools": int(total["pools"]),
        "reversion_quarters": config.reversion_quarters,
        "rolled_forward_from": booked.previous or "none (first booking)",
        "by_segment": markdown_table(booking.by_segment.round(2), rows=50),
        "by_scenario": markdown_table(booking.by_scenario.round(2), rows=50),
        "overlays": markdown_table(booking.overlays[["segment", "adjustment_bp", "amount", "reason", "approver"]].round(2), rows=50),
        "roll_forward": markdown_table(booking.roll_forward.round(2), rows=50),
        "fan_chart": dg.MetadataValue.md(f"![fan chart]({png_data_uri(booked.report.chart_path)})"),
        "report": dg.MetadataValue.path(str(booked.report.markdown_path)),
        **inputs,
        **file_metadata(booked.directory / "pools.parquet"),
    })
