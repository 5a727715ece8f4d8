"""Loss-rate paths past the reasonable-and-supportable horizon: straight-line reversion to the long-run mean.

ASC 326 lets a bank forecast only as far as it can support (H quarters) and then revert to
historical loss experience. Here the path is the forecast for quarters 1 … H, then R quarters on a
straight line from the last forecast to the series' long-run mean (the mean reached at the R-th),
then the mean for the rest of the life. R = 0 is immediate reversion. All rates are annualized
NCO rates in percent, as in the panel.
"""

from __future__ import annotations

import numpy as np

MAX_HORIZON = 12


def long_run_mean(histories) -> np.ndarray:
    """Each series' mean NCO rate over its history, which the caller cuts at the forecast origin: [N, T] → [N]."""
    rates = np.asarray(histories, float)
    if rates.ndim != 2 or rates.shape[1] == 0:
        raise ValueError(f"long_run_mean needs an [N, T] array of rates with T ≥ 1, got shape {rates.shape}")
    return np.nanmean(rates, axis=1)


def reversion_path(forecast, mean, reversion_quarters: int, quarters: int) -> np.ndarray:
    """The rate for each of ``quarters`` future quarters: [N, H] forecasts and [N] means → [N, quarters].

    A life shorter than the horizon takes the forecast's first quarters only.
    """
    forecast, mean = np.atleast_2d(np.asarray(forecast, float)), np.asarray(mean, float).reshape(-1)
    horizon = forecast.shape[1]
    _check(horizon, len(forecast), len(mean), reversion_quarters, quarters)
    steps = np.arange(1, max(quarters - horizon, 0) + 1)  # quarters after the horizon
    weight = np.minimum(steps / reversion_quarters, 1.0) if reversion_quarters else np.ones(len(steps))
    last = forecast[:, -1:]
    after = last + (mean[:, None] - last) * weight[None, :]
    return np.concatenate([forecast, after], axis=1)[:, :quarters]


def _check(horizon: int, series: int, means: int, reversion_quarters: int, quarters: int) -> None:
    if not 1 <= horizon <= MAX_HORIZON:
        raise ValueError(f"the reasonable-and-supportable horizon must be 1–{MAX_HORIZON} quarters, got {horizon}")
    if series != means:
        raise ValueError(f"{series} forecast path(s) but {means} long-run mean(s)")
    if reversion_quarters < 0 or quarters < 0:
        raise ValueError(f"reversion quarters and path length must be ≥ 0, got {reversion_quarters} and {quarters}")
