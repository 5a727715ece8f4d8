"""The walk-forward report's PNG charts (matplotlib, no display needed)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers, and no GUI toolkit to import

import matplotlib.pyplot as plt
import pandas as pd

from cecl_pipeline.files import atomic_path
from cecl_pipeline.forecast.metrics import directional_hits
from cecl_pipeline.quarters import to_ordinal

DPI = 90


def _save(figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return path


def _quarter_order(quarters) -> list[str]:
    return sorted(set(quarters), key=to_ordinal)


def forecast_vs_actual(forecasts: pd.DataFrame, model: str, path: Path) -> Path:
    """Per segment: actual vs the model's median with its 10–90 band, averaged over the segment's series."""
    rows = forecasts[forecasts["model"] == model]
    segments = sorted(rows["segment"].unique())
    columns = max(math.ceil(math.sqrt(len(segments))), 1)
    grid_rows = max(math.ceil(len(segments) / columns), 1)
    figure, axes = plt.subplots(grid_rows, columns, figsize=(5 * columns, 3.4 * grid_rows), squeeze=False, layout="constrained")
    for ax, segment in zip(axes.flat, segments, strict=False):
        per_quarter = rows[rows["segment"] == segment].groupby("quarter")[["actual", "point", "q10", "q90"]].mean()
        per_quarter = per_quarter.reindex(_quarter_order(per_quarter.index))
        x = range(len(per_quarter))
        ax.fill_between(x, per_quarter["q10"], per_quarter["q90"], alpha=0.25, label="10–90 band")
        ax.plot(x, per_quarter["point"], marker="o", ms=3, label=f"{model} median")
        ax.plot(x, per_quarter["actual"], marker="s", ms=3, color="black", label="actual")
        series = rows.loc[rows["segment"] == segment, "entity_id"].nunique()
        ax.set_title(f"{segment} ({series} series, mean)", fontsize=9)
        ax.set_xticks(list(x), per_quarter.index, rotation=90, fontsize=7)
        ax.set_ylabel("NCO rate, %", fontsize=8)
    for ax in list(axes.flat)[len(segments):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    figure.suptitle(f"Forecast vs actual: {model}", fontsize=11)
    return _save(figure, path)


def directional_accuracy_by_quarter(forecasts: pd.DataFrame, path: Path) -> Path:
    """Share of series whose forecast change from last quarter has the actual change's sign, per quarter and model."""
    answered = forecasts[forecasts["point"].notna()]
    hits = answered.assign(hit=directional_hits(answered["point"].to_numpy(), answered["actual"].to_numpy(), answered["last"].to_numpy()))
    table = hits.pivot_table(index="quarter", columns="model", values="hit", aggfunc="mean")
    table = table.reindex(_quarter_order(table.index))
    figure, ax = plt.subplots(figsize=(max(6, 0.35 * len(table) + 3), 3.8), layout="constrained")
    for model in table.columns:
        ax.plot(range(len(table)), table[model], marker="o", ms=3, label=model, linewidth=2.2 if model == "grpo_policy" else 1)
    ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    ax.set_xticks(range(len(table)), table.index, rotation=90, fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("directional accuracy")
    ax.legend(fontsize=7, ncol=3)
    ax.set_title("Directional accuracy by quarter")
    return _save(figure, path)


def mae_bars(overall: pd.DataFrame, path: Path) -> Path:
    """MAE of every model over all quarters, the policy first and highlighted."""
    ordered = overall.sort_values("mae")
    colours = ["tab:red" if m == "grpo_policy" else "tab:blue" for m in ordered["model"]]
    figure, ax = plt.subplots(figsize=(6.5, 0.45 * len(ordered) + 1.2), layout="constrained")
    ax.barh(ordered["model"], ordered["mae"], color=colours)
    for y, value in enumerate(ordered["mae"]):
        ax.text(value, y, f" {value:.3f}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("MAE, percentage points")
    ax.set_title("MAE: model vs challengers")
    return _save(figure, path)
