"""The walk-forward report: model vs baselines over every evaluated quarter, as tables, charts, markdown and HTML.

Written whole into one directory (replaced atomically, so a reader never sees half a report):

    report.md, report.html (self-contained: charts embedded), metrics.csv (every table, long form),
    charts/forecast_vs_actual.png, charts/directional_accuracy.png, charts/mae.png
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cecl_pipeline.files import atomic_dir
from cecl_pipeline.forecast import charts
from cecl_pipeline.forecast.metrics import metrics_table, stress_table
from cecl_pipeline.forecast.walkforward import POLICY_MODEL
from cecl_pipeline.quarters import to_ordinal

CHARTS = {"forecast_vs_actual": "Forecast vs actual, per segment", "directional_accuracy": "Directional accuracy by quarter",
          "mae": "MAE, model vs baselines"}


@dataclass
class Report:
    directory: Path
    quarters: list[str]
    overall: pd.DataFrame
    by_segment: pd.DataFrame
    by_quarter: pd.DataFrame
    stress: pd.DataFrame
    policy_parse_rate: float
    baseline_fallbacks: dict[str, int]
    charts: dict[str, Path] = field(default_factory=dict)

    @property
    def markdown_path(self) -> Path:
        return self.directory / "report.md"

    @property
    def html_path(self) -> Path:
        return self.directory / "report.html"


def read_forecasts(paths: list[Path]) -> pd.DataFrame:
    """The forecasts tables of several quarters as one, oldest quarter first."""
    if not paths:
        raise FileNotFoundError("no walkforward_forecasts to report on: materialize walkforward_forecasts for some quarters first")
    frame = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    return frame.sort_values(["quarter", "model", "prompt_id"], key=_quarter_key, kind="stable").reset_index(drop=True)


def _quarter_key(column: pd.Series) -> pd.Series:
    return column.map(to_ordinal) if column.name == "quarter" else column


def build_report(forecasts: pd.DataFrame, directory: Path, title: str) -> Report:
    """Compute every table, draw the charts and write the report directory."""
    policy = forecasts[forecasts["model"] == POLICY_MODEL]
    report = Report(
        directory=directory,
        quarters=sorted(forecasts["quarter"].unique(), key=to_ordinal),
        overall=metrics_table(forecasts).sort_values("mae", kind="stable").reset_index(drop=True),
        by_segment=metrics_table(forecasts, ["segment"]),
        by_quarter=metrics_table(forecasts, ["quarter"]).sort_values(["quarter", "model"], key=_quarter_key, kind="stable").reset_index(drop=True),
        stress=stress_table(forecasts),
        policy_parse_rate=float(policy["parse_rate"].mean()) if len(policy) else float("nan"),
        baseline_fallbacks={m: int(g["fallback"].sum()) for m, g in forecasts[forecasts["model"] != POLICY_MODEL].groupby("model")},
    )
    with atomic_dir(directory) as staging:
        drawn = {
            "forecast_vs_actual": charts.forecast_vs_actual(forecasts, POLICY_MODEL, staging / "charts" / "forecast_vs_actual.png"),
            "directional_accuracy": charts.directional_accuracy_by_quarter(forecasts, staging / "charts" / "directional_accuracy.png"),
            "mae": charts.mae_bars(report.overall, staging / "charts" / "mae.png"),
        }
        report.charts = {name: directory / path.relative_to(staging) for name, path in drawn.items()}
        (staging / "report.md").write_text(markdown(report, title))
        (staging / "report.html").write_text(html_page(report, title, drawn))
        long_form(report).to_csv(staging / "metrics.csv", index=False)
    return report


def headline(report: Report) -> str:
    """One line: the policy's MAE against the best baseline's."""
    overall = report.overall.set_index("model")
    baselines = overall.drop(index=POLICY_MODEL, errors="ignore")
    if POLICY_MODEL not in overall.index or baselines.empty:
        return f"{len(report.quarters)} quarter(s) evaluated"
    best = baselines["mae"].idxmin()
    return (f"{report.quarters[0]}–{report.quarters[-1]}: {POLICY_MODEL} MAE {overall.loc[POLICY_MODEL, 'mae']:.3f} pp "
            f"(parsed {report.policy_parse_rate:.0%}) vs best baseline {best} {baselines.loc[best, 'mae']:.3f} pp")


def tables(report: Report) -> dict[str, pd.DataFrame]:
    """The report's tables by section title, numbers rounded for reading."""
    mae_by_quarter = report.by_quarter.pivot(index="quarter", columns="model", values="mae")
    mae_by_quarter = mae_by_quarter.reindex(sorted(mae_by_quarter.index, key=to_ordinal)).reset_index()
    return {
        "Overall": report.overall,
        "Stress windows": report.stress,
        "By segment": report.by_segment,
        "MAE by quarter (pp)": mae_by_quarter,
    }


def _rounded(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.round(4)


def markdown(report: Report, title: str) -> str:
    lines = [f"# {title}", "", headline(report), "", _notes(report), ""]
    for section, frame in tables(report).items():
        body = _rounded(frame).to_markdown(index=False) if len(frame) else "_No quarter of the evaluation falls in a stress window._"
        lines += [f"## {section}", "", body, ""]
    for name, caption in CHARTS.items():
        lines += [f"## {caption}", "", f"![{caption}](charts/{name}.png)", ""]
    return "\n".join(lines)


def _notes(report: Report) -> str:
    fallbacks = ", ".join(f"{m} {n}" for m, n in report.baseline_fallbacks.items() if n) or "none"
    return (f"Quarters: {len(report.quarters)} ({report.quarters[0]}–{report.quarters[-1]}). Errors in percentage points of the "
            f"annualized NCO rate; `n` counts series with a usable forecast out of `rows`. Baseline fits that fell back to "
            f"persistence: {fallbacks}. Point-only models have no interval, so no coverage or pinball loss; their CRPS is |error|.")


def html_page(report: Report, title: str, drawn: dict[str, Path]) -> str:
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}img{max-width:100%}</style>",
             f"<h1>{html.escape(title)}</h1><p><b>{html.escape(headline(report))}</b></p><p>{html.escape(_notes(report))}</p>"]
    for section, frame in tables(report).items():
        parts.append(f"<h2>{html.escape(section)}</h2>" + (_rounded(frame).to_html(index=False, na_rep="—") if len(frame) else "<p>None in range.</p>"))
    for name, caption in CHARTS.items():
        parts.append(f"<h2>{html.escape(caption)}</h2><img alt='{html.escape(caption)}' src='{png_data_uri(drawn[name])}'>")
    return "\n".join(parts)


def png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def long_form(report: Report) -> pd.DataFrame:
    """Every metrics table stacked, with a ``scope`` column saying which one a row belongs to."""
    frames = [report.overall.assign(scope="overall"), report.by_segment.assign(scope="segment"),
              report.by_quarter.assign(scope="quarter"), report.stress.assign(scope="stress")]
    return pd.concat([f for f in frames if len(f)], ignore_index=True)
