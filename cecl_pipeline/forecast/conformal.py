"""Walk-forward conformal calibration of each model's 10–90 band.

Conformalised quantile regression, one model at a time: a row's score is how far the actual fell
outside its band, max(q10 − actual, actual − q90), divided by the series' scale so that series of
very different volatility (credit cards, mortgages) share one set of scores. For quarter Q the band
is moved out (or in) by the ⌈(n+1)(1−α)⌉-th smallest of the n scores of that model's rows dated in
the ``CALIBRATION_QUARTERS`` quarters before Q, times the row's scale; nothing dated Q or later
enters. A quarter with no such rows keeps its band as it is and is flagged ``calibrated = False``.

Why a rolling year and not every past quarter: one macro shock moves every series, so scores are
exchangeable within a regime, not across one. Calibrated on all past quarters, the bands on the Fed
files covered 90% after the crisis (its misses kept them wide) and 73% going into it. A 4-quarter
window came within 3 points of 80% in every period measured, on the Fed files and the synthetic
panel; 2 quarters overshot the calm 2016–2019 (88%), and 8 or 12 missed by up to 5 and 7 points
(``benchmarks/challenger_periods.py``, figures in benchmarks/RESULTS.md).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cecl_pipeline.forecast.metrics import series_scale
from cecl_pipeline.quarters import to_ordinal

ALPHA = 0.2  # the 10–90 band should hold the actual 80% of the time
CALIBRATION_QUARTERS = 4  # the scores of this many quarters before Q calibrate Q's band


def conformal_rank(n: int, alpha: float = ALPHA) -> int:
    """The rank k (1-based) of the score used among n: ⌈(n+1)(1−α)⌉, at most n.

    Beyond n the exact quantile is infinite; with so few scores the largest is taken instead, so a
    short calibration history widens the band as far as it has seen, not without bound.
    """
    return min(math.ceil((n + 1) * (1 - alpha) - 1e-9), n)  # the tolerance keeps (n+1)·0.8 = 4.0000000001 at 4


def adjustment(scores: np.ndarray, alpha: float = ALPHA) -> float:
    """The k-th smallest of the finite ``scores`` (k from ``conformal_rank``); NaN when there are none."""
    scores = np.sort(np.asarray(scores, float)[np.isfinite(scores)])
    return float(scores[conformal_rank(len(scores), alpha) - 1]) if len(scores) else math.nan


def conformity_scores(q10: np.ndarray, q90: np.ndarray, actual: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Signed distance of the actual outside [q10, q90] (negative inside), in units of the series' scale."""
    return np.maximum(q10 - actual, actual - q90) / scale


def adjusted_band(q10: np.ndarray, q90: np.ndarray, adj: float, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[q10 − adj·scale, q90 + adj·scale]; a negative ``adj`` that would cross the ends stops both at the midpoint."""
    low, high = q10 - adj * scale, q90 + adj * scale
    crossed = low > high
    middle = (q10 + q90) / 2
    return np.where(crossed, middle, low), np.where(crossed, middle, high)


def calibrate(forecasts: pd.DataFrame, alpha: float = ALPHA, window: int = CALIBRATION_QUARTERS) -> pd.DataFrame:
    """``forecasts`` with ``q10_cal``, ``q90_cal`` (NaN where a model gives no band) and ``calibrated``."""
    q10, q90 = forecasts["q10"].to_numpy(float), forecasts["q90"].to_numpy(float)
    scale = series_scale(forecasts)
    scores = conformity_scores(q10, q90, forecasts["actual"].to_numpy(float), scale)
    ordinal = forecasts["quarter"].map(to_ordinal).to_numpy()
    has_band = ~np.isnan(q10) & ~np.isnan(q90)
    low, high = np.where(has_band, q10, np.nan), np.where(has_band, q90, np.nan)
    calibrated = np.zeros(len(forecasts), bool)
    for model in forecasts["model"].unique():
        banded = has_band & (forecasts["model"] == model).to_numpy()
        for quarter in np.unique(ordinal[banded]):
            adj = adjustment(scores[banded & (ordinal < quarter) & (ordinal >= quarter - window)], alpha)
            now = banded & (ordinal == quarter) & np.isfinite(scale)
            if np.isnan(adj) or not now.any():
                continue
            low[now], high[now] = adjusted_band(q10[now], q90[now], adj, scale[now])
            calibrated[now] = True
    return forecasts.assign(q10_cal=low, q90_cal=high, calibrated=calibrated)


def covered(actual: pd.Series, low: pd.Series, high: pd.Series) -> np.ndarray:
    return ((low <= actual) & (actual <= high)).to_numpy(float)


def coverage_table(calibrated: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Per model (and ``by``): ``coverage_10_90_cal``, the calibrated band's coverage over the calibrated rows."""
    keys = ["model", *(by or [])]
    rows = calibrated[calibrated["calibrated"]]
    hits = rows.assign(coverage_10_90_cal=covered(rows["actual"], rows["q10_cal"], rows["q90_cal"]))
    coverage = hits.groupby(keys, sort=True)["coverage_10_90_cal"].mean().reset_index()
    every = calibrated[keys].drop_duplicates().sort_values(keys)
    return every.merge(coverage, on=keys, how="left").reset_index(drop=True)


def calibration_table(calibrated: pd.DataFrame) -> pd.DataFrame:
    """Per model with a band: its calibrated rows, and their coverage before and after calibration (the same rows)."""
    rows = calibrated[calibrated["calibrated"]]
    table = pd.DataFrame({
        "model": rows["model"],
        "before": covered(rows["actual"], rows["q10"], rows["q90"]),
        "after": covered(rows["actual"], rows["q10_cal"], rows["q90_cal"]),
    }).groupby("model", sort=True).agg(calibrated_rows=("before", "size"), coverage_before=("before", "mean"),
                                       coverage_after=("after", "mean"))
    return table.reset_index()
