"""Automatic additive-error ETS (ANN, AAN, AAdN chosen by AICc), fitted to many short series at once.

The reference is statsmodels ``ETSModel(y, error="add", trend=..., damped_trend=...)``: its likelihood with the
error variance concentrated out is −n/2·(log(2π·SSE/n) + 1), so maximum likelihood is least squares over the
smoothing parameters and the initial states, and its AICc counts smoothing parameters + initial states + 1.

statsmodels maximises that likelihood per series with L-BFGS from fixed starting values (α=0.1, β=0.01,
φ=0.98 and heuristic initial states), which can stop at a local optimum. Here, instead:

1. the initial states are profiled out exactly: for fixed (α, β, φ) the residuals are affine in them, so
   they are a closed-form least-squares solution (``linear_smoothing.profiled_filter``);
2. the profiled SSE of every series at every point of a grid over (α, β/α, φ) is one matrix product, because
   for fixed parameters the SSE is a quadratic form in the history;
3. each series' few best grid points are refined by a shrinking-stencil pattern search, all series at once.

Within statsmodels' bounds (α, β/α in [1e-4, 1−1e-4], φ in [0.8, 0.98]) this reaches the global optimum up to
the grid's resolution more often than L-BFGS does, so the likelihoods are at least as high and the model chosen
by AICc can differ from statsmodels' on series whose likelihood surface has several optima.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from cecl_pipeline.challengers.linear_smoothing import (
    lowest_grid_points,
    map_rows_in_chunks,
    pattern_search,
    profiled_filter,
    profiled_sse,
    quadratic_features,
    quadratic_form_coefficients,
    standardise,
    unit_to_range,
)

SMOOTHING_BOUNDS = (1e-4, 1 - 1e-4)  # statsmodels ETSModel's bounds on α and on β/α
DAMPING_BOUNDS = (0.8, 0.98)  # statsmodels ETSModel's bounds on φ
GRID_POINTS = (24, 12, 5)  # grid points along α, β/α, φ
SEARCH_STARTS = 3  # the best few grid points each start a local search: the SSE can have several basins
SEARCH_ROUNDS = 10  # stencil halvings after the grid: the final step is ~1/1000 of a grid cell
RELATIVE_SSE_FLOOR = 1e-12  # an exact fit (constant or linear history) ties instead of scoring log(0)


@dataclass(frozen=True)
class EtsSpec:
    """One candidate model: its trend, the number of searched smoothing parameters, and statsmodels' df_model."""

    name: str
    with_trend: bool
    damped: bool

    @property
    def search_dims(self) -> int:
        return 1 + self.with_trend + self.damped

    @property
    def df_model(self) -> int:
        # smoothing parameters + initial states + the error variance, as ETSResults.df_model counts them
        return self.search_dims + 1 + self.with_trend + 1


CANDIDATES = (EtsSpec("ANN", False, False), EtsSpec("AAN", True, False), EtsSpec("AAdN", True, True))


def auto_ets(histories: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[N, T] → (mean [N], std [N]): one-step-ahead forecast and its standard deviation, NaN where no fit.

    std is statsmodels' h=1 forecast standard deviation for the chosen model, sqrt(SSE/n).
    Rows with any NaN, and all rows when T < 5 (too short for AICc even for ANN), give NaN.
    """
    return map_rows_in_chunks(_fit_rows, histories, min_length=5)


def _fit_rows(histories: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    criteria, means, stds = _fit_candidates(histories)
    chosen = np.argmin(criteria, axis=0)  # ties (exact fits of a constant) go to the simplest model
    rows = np.arange(len(histories))
    return means[chosen, rows], stds[chosen, rows]


def _fit_candidates(histories: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every candidate fitted to every finite row of [N, T]: (AICc, forecast, std), each [len(CANDIDATES), N]."""
    scaled, means, scales = standardise(histories)
    n_obs = scaled.shape[1]
    features = quadratic_features(scaled)
    fits = [_fit_model(spec, scaled, features) for spec in CANDIDATES]
    sse = np.stack([f[0] for f in fits]) * scales**2
    forecasts = means + scales * np.stack([f[1] for f in fits])
    criteria = np.stack([_aicc(spec, s, scales**2, n_obs) for spec, s in zip(CANDIDATES, sse, strict=True)])
    return criteria, forecasts, np.sqrt(sse / n_obs)


def _fit_model(spec: EtsSpec, scaled: np.ndarray, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares fit of one model to every row: (SSE [N], one-step forecast [N]) in the scaled units."""
    grid_units, coefficients = _grid(spec, scaled.shape[1])
    starts = lowest_grid_points(features @ coefficients, grid_units, SEARCH_STARTS)
    series = scaled[:, None, :]

    def sse(units):
        return profiled_sse(series, *_parameters(spec, units), with_trend=spec.with_trend)

    step = np.array([1.0 / (points - 1) for points in GRID_POINTS[: spec.search_dims]])
    units = pattern_search(sse, starts, step, SEARCH_ROUNDS)
    residuals, forecast = profiled_filter(series, *_parameters(spec, units[:, None, :]), with_trend=spec.with_trend)
    return np.sum(residuals[:, 0] ** 2, axis=-1), forecast[:, 0]


def _aicc(spec: EtsSpec, sse: np.ndarray, variances: np.ndarray, n_obs: int) -> np.ndarray:
    """statsmodels' AICc; an SSE below a tiny fraction of the series' variance counts as that fraction (an exact fit)."""
    k = spec.df_model
    if n_obs - k - 1 <= 0:
        return np.full_like(sse, np.inf)
    floored = np.maximum(sse, RELATIVE_SSE_FLOOR * n_obs * variances)
    log_likelihood = -n_obs / 2 * (np.log(2 * np.pi * floored / n_obs) + 1)
    return -2 * log_likelihood + 2 * k * n_obs / (n_obs - k - 1)


def _parameters(spec: EtsSpec, units: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Search coordinates [..., d] in the unit box → (α, β, φ), keeping β ≤ α by searching β/α as statsmodels does."""
    alpha = unit_to_range(units[..., 0], *SMOOTHING_BOUNDS, ends_dense=True)
    if not spec.with_trend:
        zero = np.zeros_like(alpha)
        return alpha, zero, zero
    beta = alpha * unit_to_range(units[..., 1], *SMOOTHING_BOUNDS, ends_dense=True)
    phi = unit_to_range(units[..., 2], *DAMPING_BOUNDS) if spec.damped else np.ones_like(alpha)
    return alpha, beta, phi


@cache
def _grid(spec: EtsSpec, n_obs: int) -> tuple[np.ndarray, np.ndarray]:
    """The grid in search coordinates [G, d] and its SSE coefficients [T(T+1)/2, G] for histories of length ``n_obs``."""
    axes = [np.linspace(0.0, 1.0, points) for points in GRID_POINTS[: spec.search_dims]]
    units = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, spec.search_dims)
    # Feeding the unit histories e_j through the (linear) profiled filter gives column j of each residual map.
    basis = np.eye(n_obs)[:, None, :]
    with np.errstate(all="ignore"):
        residuals, _ = profiled_filter(basis, *_parameters(spec, units[None]), with_trend=spec.with_trend)
    return units, quadratic_form_coefficients(residuals.transpose(1, 2, 0))
