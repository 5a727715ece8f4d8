"""The allowance report a finance team reads: ``results/allowance/<Q>/report.md`` and a self-contained ``report.html``.

It holds the allowance by segment, the overlays listed apart from the model with their reasons and
approvers, the roll-forward from last quarter, and a fan chart per segment: the segment's history,
the policy's forecast with its 10–90 band over the horizon, and the loss-rate path the allowance
uses after it (the straight line back to the long-run mean), one colour per scenario; and the
model allowance under each scenario beside the probability-weighted one. Written whole into one directory,
replaced atomically, so a reader never sees half a report.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from itertools import cycle
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers

import matplotlib.pyplot as plt
import pandas as pd

from cecl_pipeline.files import atomic_dir
from cecl_pipeline.forecast.booking import Booking
from cecl_pipeline.forecast.report import PAGE_HEAD, ReportFiles, png_data_uri
from cecl_pipeline.forecast.walkforward import POLICY_MODEL
from cecl_pipeline.quarters import shift

FAN_CHART = "fan_chart.png"
COLOURS = ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:brown")
DPI = 90


@dataclass
class AllowanceReport(ReportFiles):
    @property
    def chart_path(self) -> Path:
        return self.directory / FAN_CHART


def headline(booking: Booking, reversion_quarters: int, horizon: int) -> str:
    total = booking.by_segment.set_index("segment").loc["total"]
    return (f"Allowance at {booking.quarter}: {total['allowance']:,.0f} ({total['allowance_pct_of_cost']:.2f}% of amortized cost "
            f"{total['amortized_cost']:,.0f}), of which overlays {total['overlays']:,.0f}; {int(total['pools'])} pools; "
            f"forecast {horizon} quarter(s), then straight-line reversion over {reversion_quarters} quarter(s) to each series' long-run mean.")


def sections(booking: Booking) -> dict[str, pd.DataFrame]:
    overlays = booking.overlays[["segment", "adjustment_bp", "amount", "reason", "approver"]]
    return {"Allowance by segment": booking.by_segment, "Model allowance by scenario": booking.by_scenario,
            "Qualitative adjustments (overlays)": overlays, "Roll-forward from last quarter": booking.roll_forward}


def write_report(booking: Booking, forecasts: pd.DataFrame, history: pd.DataFrame, reversion_quarters: int, directory: Path,
                 notes: list[str]) -> AllowanceReport:
    """Draw the fan chart and write both pages into ``directory``, replacing it whole."""
    horizon = int(forecasts["horizon"].max())
    title = f"CECL allowance at {booking.quarter}"
    with atomic_dir(directory) as tmp:
        fan_chart(booking, forecasts, history, reversion_quarters, tmp / FAN_CHART)
        (tmp / "report.md").write_text(markdown(booking, title, headline(booking, reversion_quarters, horizon), notes))
        (tmp / "report.html").write_text(html_page(booking, title, headline(booking, reversion_quarters, horizon), notes, tmp / FAN_CHART))
    return AllowanceReport(directory)


def markdown(booking: Booking, title: str, summary: str, notes: list[str]) -> str:
    lines = [f"# {title}", "", summary, "", *[f"- {note}" for note in notes], ""]
    for section, frame in sections(booking).items():
        lines += [f"## {section}", "", frame.to_markdown(index=False, floatfmt=",.2f") if len(frame) else "_None._", ""]
    lines += ["## Loss-rate paths per segment", "", f"![fan chart]({FAN_CHART})", ""]
    return "\n".join(lines)


def html_page(booking: Booking, title: str, summary: str, notes: list[str], chart: Path) -> str:
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>", PAGE_HEAD,
             f"<h1>{html.escape(title)}</h1><p><b>{html.escape(summary)}</b></p>",
             "<ul>" + "".join(f"<li>{html.escape(note)}</li>" for note in notes) + "</ul>"]
    for section, frame in sections(booking).items():
        body = frame.round(2).to_html(index=False, na_rep="—", float_format=lambda v: f"{v:,.2f}") if len(frame) else "<p>None.</p>"
        parts.append(f"<h2>{html.escape(section)}</h2>{body}")
    parts.append(f"<h2>Loss-rate paths per segment</h2><img alt='fan chart' src='{png_data_uri(chart)}'>")
    return "\n".join(parts)


def fan_chart(booking: Booking, forecasts: pd.DataFrame, history: pd.DataFrame, reversion_quarters: int, path: Path) -> Path:
    """One panel per segment: history, then per scenario the forecast's median and 10–90 band and the reverting path;
    means over the segment's series."""
    policy = forecasts[forecasts["model"] == POLICY_MODEL]
    segments = sorted(booking.pools["segment"].unique())
    figure, axes = plt.subplots(len(segments), 1, figsize=(8, 2.6 * len(segments)), squeeze=False)
    horizon = int(policy["horizon"].max())
    reverting = booking.paths[(booking.paths["quarter_ahead"] > horizon)
                              & (booking.paths["quarter_ahead"] <= horizon + max(reversion_quarters, 1) + 2)]
    for axis, segment in zip(axes[:, 0], segments, strict=True):
        past = history[history["segment"] == segment].groupby("quarter")["nco_rate"].mean()
        origin = len(past) - 1
        axis.plot(range(len(past)), past.to_numpy(), color="black", label="history (mean of series)")
        for colour, (scenario, rows) in zip(cycle(COLOURS), policy[policy["segment"] == segment].groupby("scenario", sort=True)):
            ahead = rows.groupby("horizon")[["point", "q10", "q90"]].mean()
            mine = reverting[(reverting["segment"] == segment) & (reverting["scenario"] == scenario)]
            after = mine.groupby("quarter_ahead")["loss_rate"].mean()
            axis.plot([origin, *(origin + ahead.index)], [past.iloc[-1], *ahead["point"]], color=colour, label=f"{scenario}: median")
            axis.fill_between(origin + ahead.index, ahead["q10"], ahead["q90"], color=colour, alpha=0.2, label=f"{scenario}: 10–90% of paths")
            if len(after):
                axis.plot([origin + horizon, *(origin + after.index)], [ahead["point"].iloc[-1], *after], color=colour, linestyle="--",
                          label=f"{scenario}: reversion to long-run mean")
        ticks = list(range(0, origin + horizon + max(reversion_quarters, 1) + 3, 4))
        axis.set_xticks(ticks, [shift(past.index[0], t) for t in ticks], fontsize=8)
        axis.set_title(segment, fontsize=10)
        axis.set_ylabel("NCO rate, % ann.", fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=DPI)
    plt.close(figure)
    return path
