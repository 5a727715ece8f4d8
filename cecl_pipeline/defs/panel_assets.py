"""Stage 2: quarterly drop files → validated NCO panel Parquet (see panel/ingest.py), and the macro table."""


import dagster as dg

from cecl_pipeline.bootstrap.default_data import ensure_default_data
from cecl_pipeline.defs.metadata import check_result, check_specs, file_metadata, log_outcomes, markdown_table, refuse
from cecl_pipeline.defs.partitions import quarter_of, quarterly
from cecl_pipeline.defs.resources import DataPaths
from cecl_pipeline.panel.errors import DropFileError
from cecl_pipeline.panel.ingest import ingest_macro, ingest_quarter
from cecl_pipeline.panel.store import panel_summary
from cecl_pipeline.panel.validation import MACRO_CHECKS, PANEL_CHECKS, PanelLimits


class PanelConfig(dg.Config):
    nco_rate_min: float = -10.0
    nco_rate_max: float = 50.0
    nco_rate_warn_above: float = 20.0
    identity_atol: float = 0.5


@dg.asset(
    group_name="panel",
    kinds={"pandas", "parquet"},
    check_specs=check_specs("macro_history", MACRO_CHECKS),
    description="Quarterly macro history (raw/macro.csv), checked for gaps, as Parquet.",
)
def macro_history(context: dg.AssetExecutionContext, paths: DataPaths) -> dg.MaterializeResult:
    layout = paths.layout()
    if note := ensure_default_data(layout):
        context.log.warning(note)
    try:
        result = ingest_macro(layout)
    except DropFileError as error:
        raise refuse(error) from None
    log_outcomes(context, result.outcomes)
    macro = result.frame
    return dg.MaterializeResult(
        metadata={
            "status": "accepted" if result.accepted else "rejected: failed blocking checks; the accepted file was left unchanged",
            "quarters": len(macro),
            "first_quarter": macro["quarter"].iloc[0],
            "last_quarter": macro["quarter"].iloc[-1],
            **file_metadata(result.path),
        },
        check_results=[check_result(o) for o in result.outcomes],
    )


@dg.asset(
    group_name="panel",
    kinds={"pandas", "parquet"},
    partitions_def=quarterly,
    check_specs=check_specs("nco_panel", PANEL_CHECKS),
    description="One quarter's NCO drop file, normalised to the panel schema and validated, as Parquet.",
)
def nco_panel(context: dg.AssetExecutionContext, config: PanelConfig, paths: DataPaths) -> dg.MaterializeResult:
    quarter = quarter_of(context)
    layout = paths.layout()
    if note := ensure_default_data(layout):
        context.log.warning(note)
    limits = PanelLimits(config.nco_rate_min, config.nco_rate_max, config.nco_rate_warn_above, config.identity_atol)
    try:
        result = ingest_quarter(layout, quarter, limits)
    except DropFileError as error:
        raise refuse(error) from None
    log_outcomes(context, result.outcomes)
    summary = panel_summary(result.frame)
    status = "accepted" if result.accepted else "rejected: failed blocking checks; the accepted file was left unchanged"
    context.log.info(f"nco_panel {quarter}: {summary['rows']} rows from {result.source.name} → {result.path} ({status})")
    return dg.MaterializeResult(
        metadata={
            "quarter": quarter,
            "status": status,
            "source": dg.MetadataValue.path(str(result.source)),
            "rows": summary["rows"],
            "entities": summary["entities"],
            "segments": ", ".join(summary["segments"]),
            "nco_rate_summary": dg.MetadataValue.json(summary["nco_rate"]),
            "preview": markdown_table(result.frame.drop(columns=["source_file"])),
            **file_metadata(result.path),
        },
        check_results=[check_result(o) for o in result.outcomes],
    )
