"""A vectorised KPSS level-stationarity test, set up the way pmdarima's ``ndiffs(test="kpss")`` sets it up.

The statistic is Kwiatkowski–Phillips–Schmidt–Shin's: the sum of squared partial sums of the demeaned
series, over n² times a Bartlett-weighted (Newey–West) long-run variance. pmdarima's ``KPSSTest`` uses
the short lag truncation ``trunc(4 (n/100)^¼)`` (2 lags for 12 quarters) and calls a series non-stationary
when the p-value interpolated in the level table is below 5%, which is the same as the statistic being
above the table's 5% point, 0.463.
"""

from __future__ import annotations

import numpy as np

LEVEL_CRITICAL_VALUE_5PCT = 0.463  # the 5% entry of the KPSS level table that pmdarima interpolates in


def short_lag_truncation(n_obs: int) -> int:
    """The number of autocovariance lags in the long-run variance for ``n_obs`` points (pmdarima's lshort)."""
    return int(np.trunc(4 * (n_obs / 100) ** 0.25))


def kpss_level_statistic(histories: np.ndarray) -> np.ndarray:
    """KPSS level statistic of each row of a finite [N, T] array; NaN for a constant row (no variance to scale by)."""
    series = np.asarray(histories, dtype=float)
    n_obs = series.shape[1]
    residuals = series - series.mean(axis=1, keepdims=True)
    partial_sums = np.cumsum(residuals, axis=1)
    eta = np.sum(partial_sums**2, axis=1) / n_obs**2
    long_run_variance = np.sum(residuals**2, axis=1) / n_obs
    n_lags = short_lag_truncation(n_obs)
    for lag in range(1, min(n_lags, n_obs - 1) + 1):
        bartlett_weight = 1 - lag / (n_lags + 1)
        autocovariance = np.sum(residuals[:, lag:] * residuals[:, :-lag], axis=1)
        long_run_variance += 2 * bartlett_weight * autocovariance / n_obs
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(long_run_variance > 0, eta / long_run_variance, np.nan)


def needs_differencing(histories: np.ndarray) -> np.ndarray:
    """True for rows the KPSS test at 5% rejects as level-stationary; False for constant rows, as pmdarima's ndiffs."""
    statistic = kpss_level_statistic(histories)
    with np.errstate(invalid="ignore"):
        return statistic > LEVEL_CRITICAL_VALUE_5PCT
