"""Forecast accuracy: point errors, direction, interval coverage, pinball loss and CRPS.

Every function takes a forecasts table in the long form the walk-forward writes, one row per
(series, quarter, model):

    quarter, entity_id, segment, model, actual, last, scale, point, q10, q50, q90, crps

``last`` is the series' value at Q−1, the reference for direction. ``scale`` is the series' mean
absolute quarter-on-quarter change over its 12-quarter window (``challengers.scale.naive_scale``),
the unit of scaled errors; tables written before it existed lack it, and read as NaN. ``point`` is NaN when a model
gave no usable forecast (a policy whose samples all failed to parse); such rows count in ``rows``
but not in ``n``. Quantile columns are NaN for point-only models (persistence, the 4-quarter mean),
whose interval metrics are then NaN too. ``crps`` is computed where the forecast distribution is
known (samples, a Gaussian) and is |error| for a point forecast, a point mass.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.special import ndtr

from cecl_pipeline.challengers.scale import naive_scale
from cecl_pipeline.quarters import to_ordinal

QUANTILES = (0.1, 0.5, 0.9)
QUANTILE_COLUMNS = ("q10", "q50", "q90")
STRESS_WINDOWS = {"GFC 2008Q1–2010Q4": ("2008Q1", "2010Q4"), "COVID 2020Q1–2021Q4": ("2020Q1", "2021Q4")}
METRIC_COLUMNS = ["rows", "n", "mae", "rmse", "bias", "directional_accuracy", "coverage_10_90", "pinball", "crps"]


def forecast_rows(examples: pd.DataFrame, quarter: str, model: str, point, quantiles, crps, **extra) -> pd.DataFrame:
    """One model's rows of the long forecasts table over the prompt ``examples`` (their ids, series, target and history)."""
    q10, q50, q90 = quantiles
    return pd.DataFrame({
        "quarter": quarter,
        "prompt_id": examples["prompt_id"].to_numpy(),
        "entity_id": examples["entity_id"].to_numpy(),
        "segment": examples["segment"].to_numpy(),
        "model": model,
        "actual": examples["target"].to_numpy(float),
        "last": np.array([h[-1] for h in examples["history"]], float),
        "scale": naive_scale(list(examples["history"])),
        "point": point, "q10": q10, "q50": q50, "q90": q90, "crps": crps,
        **extra,
    })


def series_scale(frame: pd.DataFrame) -> np.ndarray:
    """The ``scale`` column as floats, all NaN for a table written before the column existed."""
    if "scale" not in frame:
        return np.full(len(frame), np.nan)
    return frame["scale"].to_numpy(float)


def pinball_loss(actual: np.ndarray, predicted: np.ndarray, tau: float) -> np.ndarray:
    """Quantile loss of ``predicted`` as the ``tau`` quantile, per row."""
    diff = np.asarray(actual, float) - np.asarray(predicted, float)
    return np.maximum(tau * diff, (tau - 1) * diff)


def crps_from_samples(samples: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """CRPS per row of ``samples`` [n, S] (NaN = no sample) against ``actual`` [n]: E|X−y| − ½E|X−X'|.

    Rows without any sample get NaN. The ½E|X−X'| term uses all S² pairs (the V-statistic), which
    makes a single sample's CRPS equal its absolute error.
    """
    samples = np.asarray(samples, float)
    actual = np.asarray(actual, float)
    out = np.full(len(samples), np.nan)
    for i, row in enumerate(samples):
        x = row[~np.isnan(row)]
        if x.size:
            out[i] = np.abs(x - actual[i]).mean() - 0.5 * np.abs(x[:, None] - x[None, :]).mean()
    return out


def crps_gaussian(mean: np.ndarray, std: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Closed-form CRPS of N(mean, std²) at ``actual``; a zero std reduces to |error|."""
    mean, std, actual = (np.asarray(a, float) for a in (mean, std, actual))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (actual - mean) / std
        value = std * (z * (2 * ndtr(z) - 1) + 2 * np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi) - 1 / math.sqrt(math.pi))
    return np.where(std > 0, value, np.abs(actual - mean))


def directional_hits(point: np.ndarray, actual: np.ndarray, last: np.ndarray) -> np.ndarray:
    """1 where the forecast's change from last quarter has the sign of the actual change, 0 where not.

    NaN where the forecast calls no direction (no change, as persistence always does): such a row
    says nothing about direction, and counting it as a miss would score persistence 0 by construction.
    """
    called = np.sign(np.asarray(point, float) - last)
    hits = (called == np.sign(np.asarray(actual, float) - last)).astype(float)
    return np.where(called == 0, np.nan, hits)


def summarise(frame: pd.DataFrame) -> dict:
    """The metrics of one group of forecast rows (rows without a point forecast are left out of all but ``rows``)."""
    answered = frame[frame["point"].notna()]
    actual, point = answered["actual"].to_numpy(float), answered["point"].to_numpy(float)
    error = point - actual
    has_interval = answered[["q10", "q90"]].notna().all(axis=1).to_numpy()
    has_quantiles = answered[list(QUANTILE_COLUMNS)].notna().all(axis=1).to_numpy()
    return {
        "rows": len(frame),
        "n": len(answered),
        "mae": _mean(np.abs(error)),
        "rmse": math.sqrt(_mean(error**2)) if len(error) else math.nan,
        "bias": _mean(error),
        "directional_accuracy": _mean(directional_hits(point, actual, answered["last"].to_numpy(float))),
        "coverage_10_90": _mean(((answered["q10"] <= answered["actual"]) & (answered["actual"] <= answered["q90"])).to_numpy(float)[has_interval]),
        "pinball": _mean(_mean_pinball(answered)[has_quantiles]),
        "crps": _mean(answered["crps"].to_numpy(float)),
    }


def _mean_pinball(frame: pd.DataFrame) -> np.ndarray:
    """Average pinball loss over the 10/50/90 quantiles, per row."""
    actual = frame["actual"].to_numpy(float)
    losses = [pinball_loss(actual, frame[c].to_numpy(float), tau) for c, tau in zip(QUANTILE_COLUMNS, QUANTILES, strict=True)]
    return np.mean(losses, axis=0) if len(actual) else np.array([])


def _mean(values: np.ndarray) -> float:
    values = np.asarray(values, float)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan


def metrics_table(forecasts: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """One row of metrics per model (and per value of the ``by`` columns)."""
    keys = ["model", *(by or [])]
    rows = [{**dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True)), **summarise(group)}
            for key, group in forecasts.groupby(keys, sort=True)]
    return pd.DataFrame(rows, columns=[*keys, *METRIC_COLUMNS])


def stress_table(forecasts: pd.DataFrame) -> pd.DataFrame:
    """Metrics per model inside each stress window that the forecasts reach (empty when none does)."""
    ordinals = forecasts["quarter"].map(to_ordinal)
    frames = []
    for name, (first, last) in STRESS_WINDOWS.items():
        inside = forecasts[(ordinals >= to_ordinal(first)) & (ordinals <= to_ordinal(last))]
        if len(inside):
            frames.append(metrics_table(inside).assign(window=name))
    if not frames:
        return pd.DataFrame(columns=["window", "model", *METRIC_COLUMNS])
    table = pd.concat(frames, ignore_index=True)
    return table[["window", "model", *METRIC_COLUMNS]]
