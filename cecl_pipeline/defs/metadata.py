"""Turn library results into Dagster metadata and check results."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd

from cecl_pipeline.files import sha256_file
from cecl_pipeline.panel.validation import CheckOutcome


def refuse(error: Exception) -> dg.Failure:
    """A library error as a clean step failure: its message, and the file it names when it has one."""
    path = getattr(error, "path", None)
    metadata = {"file": dg.MetadataValue.path(str(path))} if path else None
    return dg.Failure(description=str(error), metadata=metadata, allow_retries=False)


def file_metadata(path: Path) -> dict:
    return {"path": dg.MetadataValue.path(str(path)), "sha256": sha256_file(path), "bytes": path.stat().st_size}


def markdown_table(frame: pd.DataFrame, rows: int = 10) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.head(rows).to_markdown(index=False))


def check_result(outcome: CheckOutcome) -> dg.AssetCheckResult:
    severity = dg.AssetCheckSeverity.ERROR if outcome.spec.blocking else dg.AssetCheckSeverity.WARN
    metadata: dict = {"offending_rows": outcome.failing_rows}
    if outcome.note:
        metadata["note"] = outcome.note
    if not outcome.passed:
        metadata["first_offending_rows"] = markdown_table(outcome.failures, rows=len(outcome.failures))
    return dg.AssetCheckResult(
        check_name=outcome.spec.name, passed=outcome.passed, severity=severity, metadata=metadata, description=outcome.summary()
    )


def check_specs(asset: str, specs) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(s.name, asset=asset, blocking=s.blocking, description=s.description) for s in specs]


def log_outcomes(context: dg.AssetExecutionContext, outcomes: list[CheckOutcome]) -> None:
    for outcome in outcomes:
        if outcome.passed:
            context.log.info(outcome.summary())
            continue
        log = context.log.error if outcome.spec.blocking else context.log.warning
        log(f"{outcome.summary()}\n{outcome.failures.to_string(index=False)}")


def report_metadata(report) -> dict:
    """A forecast report (forecast.report.Report) as metadata: headline, tables, charts inline, and the files."""
    from cecl_pipeline.forecast.report import headline, png_data_uri

    charts = {f"chart_{name}": dg.MetadataValue.md(f"![{name}]({png_data_uri(path)})") for name, path in report.charts.items()}
    return {
        "headline": headline(report),
        "quarters": f"{report.quarters[0]}–{report.quarters[-1]} ({len(report.quarters)})",
        "overall": markdown_table(report.overall.round(4), rows=len(report.overall)),
        "stress_windows": markdown_table(report.stress.round(4), rows=len(report.stress)),
        **charts,
        "report": dg.MetadataValue.path(str(report.markdown_path)),
        "report_html": dg.MetadataValue.path(str(report.html_path)),
    }
