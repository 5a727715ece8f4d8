"""The standard Theta method (theta = 2), fitted to many short series at once, as statsmodels ``ThetaModel`` does it.

statsmodels ``ThetaModel(y, period=1, deseasonalize=False).fit()`` (Hyndman & Billah's form) forecasts

    ŷ_{T+1} = SES_{T+1} + ½·b0·(1/α − (1−α)^T/α)

where b0 is the OLS slope of y on 0..T−1 and SES is simple exponential smoothing started at the first
observation, with α ∈ [1e-4, 1−1e-4] chosen by maximum likelihood, i.e. least squares. Its prediction interval
uses σ² of a separate MLE fit of an ARIMA(0,1,1) with drift; at h=1 the forecast's std is σ.

statsmodels fits both by numerical optimisation per series. Here, for all series at once:

* the SES SSE is a quadratic form in the history for fixed α, so it is evaluated on an α grid for every series with
  one matrix product, then refined per series by a shrinking-stencil search;
* the MA(1)-with-drift likelihood of the differences is written with the innovations algorithm, with the drift
  and σ² profiled out in closed form, leaving a 1-D search over the MA coefficient θ ∈ (−1, 1) done the same
  way (grid as a matrix product, then stencil refinement).

Both are global searches on bounded 1-D problems, so they find the same optimum as statsmodels' optimiser
whenever that one converges to the global optimum.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

import numpy as np

from cecl_pipeline.challengers.linear_smoothing import (
    lowest_grid_points,
    map_rows_in_chunks,
    pattern_search,
    quadratic_features,
    quadratic_form_coefficients,
    run_filter,
    standardise,
    unit_to_range,
)

SMOOTHING_BOUNDS = (1e-4, 1 - 1e-4)  # statsmodels' bounds on the SES α
MA_BOUNDS = (-1 + 1e-6, 1 - 1e-6)  # invertible MA(1), as SARIMAX enforces it
GRID_POINTS = 64
SEARCH_STARTS = 3  # the best few grid points each start a local search: both likelihoods can have several basins
SEARCH_ROUNDS = 16  # the final step is ~1/65000 of a grid cell
THETA_TREND_WEIGHT = 0.5  # (θ − 1)/θ for the standard θ = 2


def theta(histories: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[N, T] → (mean [N], std [N]): the Theta method's one-step-ahead forecast and its standard deviation.

    Rows with any NaN, and all rows when T < 4, give NaN.
    """
    return map_rows_in_chunks(_fit_rows, histories, min_length=4)


class ThetaFit(NamedTuple):
    """The fitted pieces, per series, in the histories' units."""

    alpha: np.ndarray  # SES smoothing parameter
    ses_forecast: np.ndarray
    slope: np.ndarray  # b0, the OLS slope per quarter
    ma: np.ndarray  # MA(1) coefficient of the differences
    drift: np.ndarray  # mean of the differences
    sigma2: np.ndarray  # innovation variance of the differences


def _fit_rows(histories: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fit = _fit_parameters(histories)
    # (1 − (1−α)^T)/α, written with expm1/log1p so it stays exact as α → 0 (where it tends to T)
    trend_horizon = -np.expm1(histories.shape[1] * np.log1p(-fit.alpha)) / fit.alpha
    return fit.ses_forecast + THETA_TREND_WEIGHT * fit.slope * trend_horizon, np.sqrt(fit.sigma2)


def _fit_parameters(histories: np.ndarray) -> ThetaFit:
    """Fit every row of [N, T] finite histories (call under np.errstate: exact fits take logs of zero)."""
    scaled, means, scales = standardise(histories)
    alpha, ses_forecast = _fit_ses(scaled)
    ma, drift, sigma2 = _fit_ma1_drift(np.diff(scaled, axis=1))
    return ThetaFit(alpha, means + scales * ses_forecast, scales * _ols_slope(scaled), ma, scales * drift, scales**2 * sigma2)


def _ols_slope(y: np.ndarray) -> np.ndarray:
    time = np.arange(y.shape[1]) - (y.shape[1] - 1) / 2
    return (y @ time) / (time @ time)


def _fit_ses(scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares SES started at the first observation: (α [N], one-step forecast [N])."""
    starts = lowest_grid_points(quadratic_features(scaled) @ _ses_grid_coefficients(scaled.shape[1]), _grid_units(), SEARCH_STARTS)
    series = scaled[:, None, :]

    def sse(units):
        residuals, _ = _ses(series, units[..., 0])
        return np.sum(residuals**2, axis=-1)

    units = pattern_search(sse, starts, np.array([1.0 / (GRID_POINTS - 1)]), SEARCH_ROUNDS)
    _, forecast = _ses(scaled, units[:, 0])
    return _ses_alpha(units[:, 0]), forecast


def _ses(y, units):
    alpha = _ses_alpha(units)
    zero = np.zeros_like(alpha)
    return run_filter(y, alpha, zero, zero, level0=y[..., 0], trend0=zero)


def _ses_alpha(units):
    return unit_to_range(units, *SMOOTHING_BOUNDS, ends_dense=True)


def _fit_ma1_drift(differences: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact-likelihood MLE of differences = drift + e_t + θ·e_{t−1}, per row: (θ, drift, σ²)."""
    n = differences.shape[1]
    coefficients, log_dets = _ma1_grid(n)
    grid_values = _profiled_neg_log_likelihood(quadratic_features(differences) @ coefficients, log_dets, n)
    starts = lowest_grid_points(grid_values, _grid_units(), SEARCH_STARTS)
    series = differences[:, None, :]

    def neg_log_likelihood(units):
        whitened, log_det, _ = _ma1_whitened_residuals(series, _ma_coefficient(units[..., 0]))
        return _profiled_neg_log_likelihood(np.sum(whitened**2, axis=-1), log_det, n)

    units = pattern_search(neg_log_likelihood, starts, np.array([1.0 / (GRID_POINTS - 1)]), SEARCH_ROUNDS)
    ma = _ma_coefficient(units[:, 0])
    whitened, _, drift = _ma1_whitened_residuals(differences, ma)
    return ma, drift, np.sum(whitened**2, axis=-1) / n


def _profiled_neg_log_likelihood(sum_of_squares, log_det, n: int):
    """−log L up to a constant once σ² = sum_of_squares/n is profiled out; an exact fit scores −inf instead of raising."""
    return n / 2 * np.log(sum_of_squares / n) + log_det / 2


def _ma1_whitened_residuals(x, ma):
    """Innovations-algorithm residuals of x − drift scaled to unit variance, the drift set by GLS.

    Returns (residuals [..., n], log det of the MA(1) correlation matrix [...], drift [...]).

    Everything is linear in x, so x may be any batch; ``ma`` broadcasts against ``x[..., 0]``.
    """
    gamma0 = 1 + ma**2
    variance = gamma0 + 0 * x[..., 0]
    predicted_x = 0 * x[..., 0]
    predicted_ones = np.zeros_like(predicted_x)
    innovations_x, innovations_ones, variances = [], [], []
    for t in range(x.shape[-1]):
        innovation_x, innovation_ones = x[..., t] - predicted_x, 1 - predicted_ones
        innovations_x.append(innovation_x)
        innovations_ones.append(innovation_ones)
        variances.append(variance)
        weight = ma / variance
        predicted_x, predicted_ones = weight * innovation_x, weight * innovation_ones
        variance = gamma0 - ma * weight
    u_x, u_ones, v = (np.stack(np.broadcast_arrays(*parts), axis=-1) for parts in (innovations_x, innovations_ones, variances))
    drift = np.sum(u_x * u_ones / v, axis=-1) / np.sum(u_ones**2 / v, axis=-1)
    return (u_x - drift[..., None] * u_ones) / np.sqrt(v), np.sum(np.log(v), axis=-1), drift


def _ma_coefficient(units):
    return unit_to_range(units, *MA_BOUNDS, ends_dense=True)


@cache
def _grid_units() -> np.ndarray:
    return np.linspace(0.0, 1.0, GRID_POINTS)[:, None]


@cache
def _ses_grid_coefficients(n_obs: int) -> np.ndarray:
    """SSE coefficients [T(T+1)/2, G] of the SES grid: unit histories e_j give column j of each residual map."""
    residuals, _ = _ses(np.eye(n_obs)[:, None, :], _grid_units()[None, :, 0])
    return quadratic_form_coefficients(residuals.transpose(1, 2, 0))


@cache
def _ma1_grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum-of-squares coefficients [n(n+1)/2, G] and log determinants [G] of the MA(1)-with-drift grid."""
    whitened, log_det, _ = _ma1_whitened_residuals(np.eye(n)[:, None, :], _ma_coefficient(_grid_units()[None, :, 0]))
    return quadratic_form_coefficients(whitened.transpose(1, 2, 0)), log_det[0]
