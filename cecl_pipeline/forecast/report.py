"""The walk-forward report: model vs challengers over every evaluated quarter, as tables, charts, markdown and HTML.

Beside the accuracy metrics, the overall and by-segment tables carry the skill figures of
``forecast.skill`` and the coverage of the conformally calibrated 10–90 band (``forecast.conformal``).

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
from cecl_pipeline.forecast.conformal import calibrate, calibration_table, coverage_table
from cecl_pipeline.forecast.metrics import metrics_table, stress_table
from cecl_pipeline.forecast.skill import best_challenger, skill_table
from cecl_pipeline.forecast.walkforward import POLICY_MODEL
from cecl_pipeline.quarters import to_ordinal

CHARTS = {"forecast_vs_actual": "Forecast vs actual, per segment", "directional_accuracy": "Directional accuracy by quarter",
          "mae": "MAE, model vs challengers"}
POLICY_VS_BEST = "Policy vs best challenger by segment"
CALIBRATION = "Calibration"
EMPTY = {"Stress windows": "No quarter of the evaluation falls in a stress window.",
         POLICY_VS_BEST: "No policy or no challenger to compare.", CALIBRATION: "No band could be calibrated."}


PAGE_HEAD = ("<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}img{max-width:100%}</style>")


@dataclass
class ReportFiles:
    """A report written whole into one directory: report.md beside a self-contained report.html."""

    directory: Path

    @property
    def markdown_path(self) -> Path:
        return self.directory / "report.md"

    @property
    def html_path(self) -> Path:
        return self.directory / "report.html"


@dataclass
class Report(ReportFiles):
    quarters: list[str]
    overall: pd.DataFrame
    by_segment: pd.DataFrame
    by_quarter: pd.DataFrame
    stress: pd.DataFrame
    policy_parse_rate: float
    baseline_fallbacks: dict[str, int]
    best_challenger: str | None = None
    policy_vs_best: pd.DataFrame = field(default_factory=pd.DataFrame)
    calibration: pd.DataFrame = field(default_factory=pd.DataFrame)
    charts: dict[str, Path] = field(default_factory=dict)


def read_forecasts(paths: list[Path]) -> pd.DataFrame:
    """The forecasts tables of several quarters as one, oldest quarter first."""
    if not paths:
        raise FileNotFoundError("no walkforward_forecasts to report on: materialize walkforward_forecasts for some quarters first")
    frame = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    if "scale" not in frame:  # every file predates the column: scaled figures come out NaN
        frame["scale"] = float("nan")
    return frame.sort_values(["quarter", "model", "prompt_id"], key=_quarter_key, kind="stable").reset_index(drop=True)


def _quarter_key(column: pd.Series) -> pd.Series:
    return column.map(to_ordinal) if column.name == "quarter" else column


def build_report(forecasts: pd.DataFrame, directory: Path, title: str) -> Report:
    """Compute every table, draw the charts and write the report directory."""
    policy = forecasts[forecasts["model"] == POLICY_MODEL]
    calibrated = calibrate(forecasts)
    best = best_challenger(forecasts)
    by_segment = scored_table(forecasts, calibrated, best, ["segment"])
    report = Report(
        directory=directory,
        quarters=sorted(forecasts["quarter"].unique(), key=to_ordinal),
        overall=scored_table(forecasts, calibrated, best).sort_values("mae", kind="stable").reset_index(drop=True),
        by_segment=by_segment,
        by_quarter=metrics_table(forecasts, ["quarter"]).sort_values(["quarter", "model"], key=_quarter_key, kind="stable").reset_index(drop=True),
        stress=stress_table(forecasts),
        policy_parse_rate=float(policy["parse_rate"].mean()) if len(policy) else float("nan"),
        baseline_fallbacks={m: int(g["fallback"].sum()) for m, g in forecasts[forecasts["model"] != POLICY_MODEL].groupby("model")},
        best_challenger=best,
        policy_vs_best=policy_vs_best(by_segment, best),
        calibration=calibration_table(calibrated),
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


def scored_table(forecasts: pd.DataFrame, calibrated: pd.DataFrame, best: str | None, by: list[str] | None = None) -> pd.DataFrame:
    """``metrics_table`` with the calibrated band's coverage after the plain one, then the skill figures."""
    keys = ["model", *(by or [])]
    table = metrics_table(forecasts, by).merge(coverage_table(calibrated, by), on=keys, how="left")
    table = table.merge(skill_table(forecasts, by, best), on=keys, how="left")
    columns = list(table.columns)
    columns.insert(columns.index("coverage_10_90") + 1, columns.pop(columns.index("coverage_10_90_cal")))
    return table[columns]


def policy_vs_best(by_segment: pd.DataFrame, best: str | None) -> pd.DataFrame:
    """Per segment: the policy's MAE, the best overall challenger's, and policy − challenger (negative: the policy is better)."""
    columns = ["segment", "policy_mae", "best_challenger_mae", "difference"]
    mae = by_segment.pivot(index="segment", columns="model", values="mae")
    if best is None or POLICY_MODEL not in mae or best not in mae:
        return pd.DataFrame(columns=columns)
    table = pd.DataFrame({"policy_mae": mae[POLICY_MODEL], "best_challenger_mae": mae[best]})
    return table.assign(difference=table["policy_mae"] - table["best_challenger_mae"]).reset_index()[columns]


def headline(report: Report) -> str:
    """One line: the policy's MAE against the best challenger's, its relative MAE, share of series beaten and DM p-value."""
    overall = report.overall.set_index("model")
    best = report.best_challenger
    if POLICY_MODEL not in overall.index or best not in overall.index:
        return f"{len(report.quarters)} quarter(s) evaluated"
    policy = overall.loc[POLICY_MODEL]
    return (f"{report.quarters[0]}–{report.quarters[-1]}: {POLICY_MODEL} MAE {policy['mae']:.3f} pp "
            f"(parsed {report.policy_parse_rate:.0%}) vs best challenger {best} {overall.loc[best, 'mae']:.3f} pp; "
            f"rel. MAE (to persistence) {policy['rel_mae']:.3f}, beats {best} on {policy['share_beating_best']:.0%} of series, "
            f"Diebold–Mariano p {policy['dm_pvalue']:.3f}")


def tables(report: Report) -> dict[str, pd.DataFrame]:
    """The report's tables by section title, numbers rounded for reading."""
    mae_by_quarter = report.by_quarter.pivot(index="quarter", columns="model", values="mae")
    mae_by_quarter = mae_by_quarter.reindex(sorted(mae_by_quarter.index, key=to_ordinal)).reset_index()
    return {
        "Overall": report.overall,
        POLICY_VS_BEST: report.policy_vs_best,
        CALIBRATION: report.calibration,
        "Stress windows": report.stress,
        "By segment": report.by_segment,
        "MAE by quarter (pp)": mae_by_quarter,
    }


def _rounded(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.round(4)


def markdown(report: Report, title: str) -> str:
    lines = [f"# {title}", "", headline(report), "", _notes(report), ""]
    for section, frame in tables(report).items():
        body = _rounded(frame).to_markdown(index=False) if len(frame) else f"_{EMPTY.get(section, 'None.')}_"
        lines += [f"## {section}", "", *_intro(report, section), body, ""]
    for name, caption in CHARTS.items():
        lines += [f"## {caption}", "", f"![{caption}](charts/{name}.png)", ""]
    return "\n".join(lines)


def _notes(report: Report) -> str:
    fallbacks = ", ".join(f"{m} {n}" for m, n in report.baseline_fallbacks.items() if n) or "none"
    return (f"Quarters: {len(report.quarters)} ({report.quarters[0]}–{report.quarters[-1]}). Errors in percentage points of the "
            f"annualized NCO rate; `n` counts series with a usable forecast out of `rows`. Baseline fits that fell back to "
            f"persistence: {fallbacks}. Point-only models have no interval, so no coverage or pinball loss; their CRPS is |error|. "
            f"rel_mae and gmrae compare each model with persistence on the same rows (gmrae with both errors floored at 0.005 pp); "
            f"mase divides each error by its series' mean absolute quarterly change; share_beating_best and the Diebold–Mariano "
            f"test (quarterly mean loss differential, small-sample corrected) set the policy against the best challenger; "
            f"coverage_10_90_cal counts only calibrated rows.")


def _intro(report: Report, section: str) -> list[str]:
    """A paragraph (and the blank line after it) to open ``section``, or nothing."""
    if section == POLICY_VS_BEST and report.best_challenger:
        return [f"MAE in pp against the best overall challenger, {report.best_challenger}; difference = policy − challenger.", ""]
    if section == CALIBRATION:
        return [calibration_summary(report), ""]
    return []


def calibration_summary(report: Report) -> str:
    """The calibration method in a sentence, then each model's coverage before → after on its calibrated rows."""
    method = ("Each quarter's 10–90 band is widened or narrowed by walk-forward conformal calibration (target 80%), using only "
              "the same model's rows of the four quarters before, in units of each series' scale; the first quarter stays uncalibrated.")
    if report.calibration.empty:
        return method + " No row could be calibrated (it needs a band, an earlier quarter and the series' scale)."
    changes = "; ".join(f"{r.model} {r.coverage_before:.0%} → {r.coverage_after:.0%}" for r in report.calibration.itertuples())
    return f"{method} Coverage before → after, on the calibrated rows: {changes}."


def html_page(report: Report, title: str, drawn: dict[str, Path]) -> str:
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>", PAGE_HEAD,
             f"<h1>{html.escape(title)}</h1><p><b>{html.escape(headline(report))}</b></p><p>{html.escape(_notes(report))}</p>"]
    for section, frame in tables(report).items():
        intro = "".join(f"<p>{html.escape(text)}</p>" for text in _intro(report, section) if text)
        body = _rounded(frame).to_html(index=False, na_rep="—") if len(frame) else f"<p>{html.escape(EMPTY.get(section, 'None.'))}</p>"
        parts.append(f"<h2>{html.escape(section)}</h2>{intro}{body}")
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
