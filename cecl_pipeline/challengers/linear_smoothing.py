"""Shared machinery for the vectorised exponential-smoothing challengers (``ets`` and ``theta``).

For fixed smoothing parameters an additive-error exponential-smoothing filter is linear in the data and in
its initial states, so the residuals and the one-step forecast are affine maps of (history, initial states).
That gives two tools used by both challengers:

* ``run_filter`` runs the level/trend recursion for any broadcastable batch of parameters (e.g. [N, K]
  candidate parameters per series), and ``profiled_filter`` (``profiled_sse`` when only the SSE is needed)
  sets the least-squares initial states in closed form, so only the smoothing parameters need searching.
* ``quadratic_features`` turns histories into the products y_t·y_s, so that for a parameter grid shared by all
  series, ``sse = quadratic_features(y) @ coefficient_matrix`` is one matrix product ([N, T(T+1)/2] @ [·, G]).

``pattern_search`` then refines each series' few best grid points locally by shrinking-stencil search.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

CHUNK_ROWS = 1024  # the per-series refinement holds [rows, 3^d, T] arrays: this keeps a chunk to tens of MiB
RIDGE = 1e-12  # relative ridge on the initial states' 2×2 normal equations, finite where the two responses are nearly collinear


def run_filter(y, alpha, beta, phi, level0, trend0):
    """Additive-error (damped) trend exponential smoothing: residuals [..., T] and the one-step forecast [...].

    Parameters broadcast against ``y[..., 0]``; ``beta = phi = 0`` with ``trend0 = 0`` gives simple smoothing.
    The initial states are the states before the first observation (statsmodels ETSModel's l_{-1}, b_{-1}).
    """
    level, trend = level0, trend0
    residuals = []
    for t in range(y.shape[-1]):
        predicted = level + phi * trend
        error = y[..., t] - predicted
        residuals.append(error)
        level = predicted + alpha * error
        trend = phi * trend + beta * error
    return np.stack(np.broadcast_arrays(*residuals), axis=-1), level + phi * trend


def profiled_filter(y, alpha, beta, phi, with_trend: bool):
    """``run_filter`` with the initial level (and trend) set to minimise the sum of squared residuals.

    The residuals are ``e0 - X @ x0`` where ``e0`` runs from zero initial states and the columns of X are the
    filter's responses to a unit initial level / trend, so x0 is the least-squares solution of a 1×1 or 2×2
    system, solved elementwise. Returns (residuals [..., T], forecast [...]) for the broadcast parameters.
    """
    zero = np.zeros_like(y[..., 0])
    no_data = np.zeros_like(y)
    e0, forecast0 = run_filter(y, alpha, beta, phi, zero, zero)
    neg_x_level, level_forecast = run_filter(no_data, alpha, beta, phi, zero + 1.0, zero)
    if not with_trend:
        gram = np.sum(neg_x_level**2, axis=-1)
        level0 = -np.sum(neg_x_level * e0, axis=-1) / gram
        return e0 + neg_x_level * level0[..., None], forecast0 + level_forecast * level0
    neg_x_trend, trend_forecast = run_filter(no_data, alpha, beta, phi, zero, zero + 1.0)
    g11 = np.sum(neg_x_level**2, axis=-1)
    g22 = np.sum(neg_x_trend**2, axis=-1)
    g12 = np.sum(neg_x_level * neg_x_trend, axis=-1)
    r1 = -np.sum(neg_x_level * e0, axis=-1)
    r2 = -np.sum(neg_x_trend * e0, axis=-1)
    ridge = RIDGE * (g11 + g22)
    g11, g22 = g11 + ridge, g22 + ridge
    det = g11 * g22 - g12**2
    level0 = (g22 * r1 - g12 * r2) / det
    trend0 = (g11 * r2 - g12 * r1) / det
    residuals = e0 + neg_x_level * level0[..., None] + neg_x_trend * trend0[..., None]
    return residuals, forecast0 + level_forecast * level0 + trend_forecast * trend0


def profiled_sse(y, alpha, beta, phi, with_trend: bool):
    """The SSE of ``profiled_filter`` without storing residuals: the search's hot loop, so it only accumulates sums.

    With X's columns ρ_t (the prediction's response to a unit initial level / trend, ρ_0 = (1, φ), ρ_{t+1} = ρ_t M
    for the zero-data transition M), SSE = e0'e0 − (X'e0)'(X'X)⁻¹(X'e0). The subtraction loses digits when the
    fit is nearly exact, so final SSEs come from ``profiled_filter``'s residuals.
    """
    shape = np.broadcast_shapes(y.shape[:-1], np.shape(alpha), np.shape(beta), np.shape(phi))
    level = trend = np.zeros(shape)
    response_level, response_trend = np.ones(shape), phi * np.ones(shape)
    sum_ee = sum_le = sum_ll = sum_te = sum_tt = sum_lt = 0.0
    for t in range(y.shape[-1]):
        predicted = level + phi * trend
        error = y[..., t] - predicted
        sum_ee = sum_ee + error**2
        sum_le = sum_le + response_level * error
        sum_ll = sum_ll + response_level**2
        level = predicted + alpha * error
        if with_trend:
            sum_te = sum_te + response_trend * error
            sum_tt = sum_tt + response_trend**2
            sum_lt = sum_lt + response_level * response_trend
            trend = phi * trend + beta * error
            decayed = response_level * (1 - alpha)
            response_level, response_trend = decayed - beta * response_trend, phi * (decayed + (1 - beta) * response_trend)
        else:
            response_level = response_level * (1 - alpha)
    if not with_trend:
        return np.maximum(sum_ee - sum_le**2 / sum_ll, 0.0)
    ridge = RIDGE * (sum_ll + sum_tt)
    sum_ll, sum_tt = sum_ll + ridge, sum_tt + ridge
    explained = (sum_tt * sum_le**2 - 2 * sum_lt * sum_le * sum_te + sum_ll * sum_te**2) / (sum_ll * sum_tt - sum_lt**2)
    return np.maximum(sum_ee - explained, 0.0)


def quadratic_features(y: np.ndarray) -> np.ndarray:
    """[N, T] → [N, T(T+1)/2]: the products y_t·y_s for t ≤ s, so any quadratic form in y is a dot product."""
    rows, cols = np.triu_indices(y.shape[-1])
    return y[:, rows] * y[:, cols]


def quadratic_form_coefficients(residual_maps: np.ndarray) -> np.ndarray:
    """Residual maps [G, T, T] (residuals = map @ y) → [T(T+1)/2, G] so that SSE = quadratic_features(y) @ result."""
    gram = np.einsum("gtj,gtk->gjk", residual_maps, residual_maps)
    rows, cols = np.triu_indices(gram.shape[-1])
    off_diagonal_twice = np.where(rows == cols, 1.0, 2.0)
    return (gram[:, rows, cols] * off_diagonal_twice).T


def lowest_grid_points(values: np.ndarray, grid_units: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` grid points [N, count, d] with the lowest objective ``values`` [N, G] for each series."""
    count = min(count, values.shape[1])
    lowest = np.argpartition(_finite_or_inf(values), count - 1, axis=1)[:, :count]
    return grid_units[lowest]


def pattern_search(objective: Callable[[np.ndarray], np.ndarray], starts: np.ndarray, step: np.ndarray, rounds: int) -> np.ndarray:
    """Minimise ``objective`` per series in the unit box from several ``starts`` [N, S, d]; the best end point [N, d].

    Each round evaluates the 3^d stencil around every current point at once (``objective`` maps [N, K, d] →
    [N, K]), moves to its best point and halves the stencil; the centre is in the stencil, so no value increases.
    Several starts guard against the grid's best point lying in a worse basin than the runner-up's.
    """
    n_series, n_starts, dims = starts.shape
    offsets = np.stack(np.meshgrid(*([np.array([0.0, -1.0, 1.0])] * dims), indexing="ij"), axis=-1).reshape(-1, dims)
    points = starts
    for _ in range(rounds):
        candidates = np.clip(points[:, :, None, :] + offsets * step, 0.0, 1.0)
        values = _finite_or_inf(objective(candidates.reshape(n_series, -1, dims))).reshape(n_series, n_starts, -1)
        points = np.take_along_axis(candidates, np.argmin(values, axis=2)[:, :, None, None], axis=2)[:, :, 0]
        step = step / 2
    best = np.argmin(_finite_or_inf(objective(points)), axis=1)
    return points[np.arange(n_series), best]


def _finite_or_inf(values: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(values), np.inf, values)


def standardise(histories: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centred and scaled rows, row means, row scales): every model here is shift-equivariant, and unit scale keeps sums of squares well-conditioned."""
    means = histories.mean(axis=1)
    centred = histories - means[:, None]
    scales = np.sqrt(np.mean(centred**2, axis=1))
    scales = np.where(scales > 0, scales, 1.0)
    return centred / scales[:, None], means, scales


def map_rows_in_chunks(fit_rows: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], histories, min_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate [N, T] histories, fit finite rows chunk by chunk, NaN for rows with any NaN or T < ``min_length``."""
    histories = np.asarray(histories, dtype=float)
    if histories.ndim != 2:
        raise ValueError(f"histories must be a 2-D [N, T] array, got shape {histories.shape}")
    mean = np.full(len(histories), np.nan)
    std = np.full(len(histories), np.nan)
    if histories.shape[1] < min_length:
        return mean, std
    usable = np.flatnonzero(np.isfinite(histories).all(axis=1))
    for start in range(0, len(usable), CHUNK_ROWS):
        rows = usable[start : start + CHUNK_ROWS]
        with np.errstate(all="ignore"):
            mean[rows], std[rows] = fit_rows(histories[rows])
    return mean, std


def unit_to_range(u, low: float, high: float, ends_dense: bool = False):
    """Map the search coordinate u ∈ [0, 1] to a parameter in [low, high]; ``ends_dense`` packs points near both ends, where smoothing SSEs bend most."""
    if ends_dense:
        u = 0.5 - 0.5 * np.cos(np.pi * u)
    return low + (high - low) * u
