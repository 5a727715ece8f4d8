"""A vectorised automatic ARIMA challenger: one-step-ahead forecasts for many short series at once.

Method, per series (all series of a chunk at once, as numpy array arithmetic):

1. Differencing order d ∈ {0, 1} from the KPSS level-stationarity test at 5%, with pmdarima's lag
   truncation and critical value (see ``kpss.py``), so d agrees with ``pmdarima.arima.ndiffs(test="kpss")``.
2. Candidates ARMA(p, q) on the (differenced) series w for p ∈ {0, 1, 2}, q ∈ {0, 1}, each with and
   without a constant (the mean for d = 0, the drift for d = 1), twelve in all: the space pmdarima's
   stepwise search walks with ``max_p=2, max_q=1`` (it also toggles the constant), searched exhaustively.
3. Each candidate is fitted by conditional least squares. For a fixed MA coefficient θ, filtering the
   target, the lags and the constant column by (1 + θB)⁻¹ (zero pre-sample residual) makes the residuals
   linear in the AR coefficients and the constant, so one batch of small normal equations fits every
   series; θ is chosen on a grid over [−0.95, 0.95], coarse then refined around the best coarse value.
4. The candidate with the lowest AICc of the conditional Gaussian likelihood wins, counting parameters
   as pmdarima does (p + q + constant + σ²). As in pmdarima's root test, fits whose AR polynomial has an
   inverse root of modulus above 0.99 are rejected; the θ grid keeps the MA part invertible.
5. The forecast is the winner's one-step prediction, with differencing undone; its standard deviation is
   the residual σ (maximum-likelihood, over the conditioning sample).

How it differs from pmdarima: pmdarima maximises the exact Gaussian likelihood (a Kalman filter through
statsmodels' SARIMAX) with a numerical optimiser, once per candidate and series, and computes AICc with
n = the series length. Here the likelihood is conditional: every candidate is fitted on the same sample,
the observations after the first two (of the differenced series), so that their sums of squares compare
fairly, and AICc uses that sample size. On 12-point series this changes the fits somewhat (conditional
fits of MA terms and of near-unit AR roots differ most; pmdarima's optimiser keeps AR fits stationary, whereas
a candidate whose least-squares AR part is not is dropped here), but it makes the fit closed-form apart from a
one-dimensional grid, which is what lets tens of thousands of series run in seconds instead of hours.
Constant series get the constant with σ = 0 (pmdarima fits a zero-mean white noise to them instead).
"""

from __future__ import annotations

import numpy as np

from cecl_pipeline.challengers.kpss import needs_differencing

MAX_AR_ORDER = 2
CONDITIONING_LENGTH = MAX_AR_ORDER  # the first differenced points only feed the lags, for every candidate alike
MAX_INVERSE_ROOT = 0.99  # pmdarima's _root_test threshold (1 − 1e-2)
MA_LIMIT = 0.95
COARSE_MA_GRID = np.round(np.linspace(-MA_LIMIT, MA_LIMIT, 39), 12)  # step 0.05, includes θ = 0 (the pure-AR candidates)
ZERO_THETA_INDEX = int(np.argmin(np.abs(COARSE_MA_GRID)))
FINE_MA_OFFSETS = np.linspace(-0.04, 0.04, 9)  # step 0.01 around the best coarse θ
CHUNK_ROWS = 2048  # filtered designs take about CHUNK_ROWS × 39 × 10 × 4 doubles: tens of MB a chunk
RIDGE = 1e-10  # relative to the Gram diagonal: keeps collinear designs (flat or linear stretches) solvable
SIGMA2_FLOOR = 1e-12  # on the unit-scaled series: below round-off a fit is exact, and then fewer parameters win

# Design columns of the regression, in this order; the target is filtered like the regressors.
CONSTANT, LAG1, LAG2, TARGET = 0, 1, 2, 3
CANDIDATES = tuple((has_constant, p, q) for has_constant in (True, False) for p in range(MAX_AR_ORDER + 1) for q in (0, 1))


def auto_arima(histories: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[N, T] → (mean [N], std [N]): one-step-ahead forecast and its standard deviation, NaN where no fit."""
    series = np.asarray(histories, dtype=float)
    if series.ndim != 2:
        raise ValueError(f"histories must be a 2-D [N, T] array, got shape {series.shape}")
    mean = np.full(series.shape[0], np.nan)
    std = np.full(series.shape[0], np.nan)
    fittable = np.flatnonzero(np.isfinite(series).all(axis=1))
    for start in range(0, fittable.size, CHUNK_ROWS):
        rows = fittable[start : start + CHUNK_ROWS]
        mean[rows], std[rows] = _forecast_chunk(series[rows])
    return mean, std


def _forecast_chunk(series: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-step forecast and σ for finite rows; constant rows forecast their constant with σ = 0."""
    mean = series[:, -1].copy()
    std = np.zeros(len(series))
    scale = np.max(np.abs(series), axis=1)
    varying = np.ptp(series, axis=1) > 1e-12 * scale
    if not varying.any():
        return mean, std
    # Unit scale makes the ridge and the σ² floor mean the same for every series; all candidates are scale-equivariant.
    unit = series[varying] / scale[varying, None]
    differenced = needs_differencing(unit)
    unit_mean = np.empty(len(unit))
    unit_std = np.empty(len(unit))
    for d, rows in ((0, ~differenced), (1, differenced)):
        if rows.any():
            w = np.diff(unit[rows], axis=1) if d else unit[rows]
            next_w, unit_std[rows] = _forecast_best_arma(w)
            unit_mean[rows] = next_w + unit[rows, -1] if d else next_w
    mean[varying] = unit_mean * scale[varying]
    std[varying] = unit_std * scale[varying]
    return mean, std


def _forecast_best_arma(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fit every candidate ARMA to each row of w [n, L], pick by AICc, and return its next-value forecast and σ."""
    n_rows, length = w.shape
    n_fitted = length - CONDITIONING_LENGTH
    if n_fitted < 3:  # even white noise (σ² alone) needs n − k − 1 > 0 in AICc
        return np.full(n_rows, np.nan), np.full(n_rows, np.nan)
    design = _lagged_design(w)
    coarse_gram = _filtered_gram(design, np.broadcast_to(COARSE_MA_GRID, (n_rows, COARSE_MA_GRID.size)))
    best_aicc = np.full(n_rows, np.inf)
    best = {"constant": np.zeros(n_rows), "phi1": np.zeros(n_rows), "phi2": np.zeros(n_rows), "theta": np.zeros(n_rows)}
    for has_constant, p, q in CANDIDATES:
        n_params = p + q + int(has_constant) + 1
        if n_fitted - n_params - 1 <= 0:
            continue
        sse, coefficients, theta = _fit_candidate(design, coarse_gram, has_constant, p, q)
        aicc = _conditional_aicc(sse, n_fitted, n_params)
        better = aicc < best_aicc
        best_aicc[better] = aicc[better]
        for name, values in _named_coefficients(coefficients, has_constant, p, theta).items():
            best[name][better] = values[better]
    fitted = np.isfinite(best_aicc)
    next_w, sigma = _one_step_forecast(w, **best)
    return np.where(fitted, next_w, np.nan), np.where(fitted, sigma, np.nan)


def _lagged_design(w: np.ndarray) -> np.ndarray:
    """[n, L] → [n, L − 2, 4]: constant, w_{t−1}, w_{t−2} and w_t for t past the conditioning points."""
    n_rows, length = w.shape
    times = np.arange(CONDITIONING_LENGTH, length)
    design = np.empty((n_rows, times.size, 4))
    design[:, :, CONSTANT] = 1.0
    design[:, :, LAG1] = w[:, times - 1]
    design[:, :, LAG2] = w[:, times - 2]
    design[:, :, TARGET] = w[:, times]
    return design


def _fit_candidate(design: np.ndarray, coarse_gram: np.ndarray, has_constant: bool, p: int, q: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Conditional least squares for one candidate on every row: (SSE [n], coefficients [n, k], θ [n]).

    ``coarse_gram`` holds the filtered cross-products on COARSE_MA_GRID, shared by all candidates.
    """
    columns = ([CONSTANT] if has_constant else []) + [LAG1, LAG2][:p]
    n_rows = design.shape[0]
    if q == 0:
        sse, coefficients = _sse_from_gram(coarse_gram[:, [ZERO_THETA_INDEX]], columns)
        return sse[:, 0], coefficients[:, 0], np.zeros(n_rows)
    sse, _ = _sse_from_gram(coarse_gram, columns)
    best_coarse = COARSE_MA_GRID[np.argmin(sse, axis=1)]
    fine = np.clip(best_coarse[:, None] + FINE_MA_OFFSETS, -MA_LIMIT, MA_LIMIT)
    sse, coefficients = _sse_from_gram(_filtered_gram(design, fine), columns)
    best_fine = np.argmin(sse, axis=1)
    rows = np.arange(n_rows)
    return sse[rows, best_fine], coefficients[rows, best_fine], fine[rows, best_fine]


def _sse_from_gram(gram: np.ndarray, columns: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """SSE [n, G] and coefficients [n, G, k] of the regression on ``columns``, from filtered cross-products [n, G, 4, 4].

    Fits whose AR part is not stationary (by pmdarima's root threshold) get an infinite SSE.
    """
    target_sq = gram[..., TARGET, TARGET]
    if not columns:
        return np.maximum(target_sq, 0.0), np.zeros((*target_sq.shape, 0))
    cross = gram[..., columns, TARGET]
    normal = gram[..., columns, :][..., :, columns]
    diagonal = np.arange(len(columns))
    normal[..., diagonal, diagonal] *= 1 + RIDGE
    normal[..., diagonal, diagonal] += RIDGE
    coefficients = np.linalg.solve(normal, cross[..., None])[..., 0]
    sse = np.maximum(target_sq - np.sum(coefficients * cross, axis=-1), 0.0)
    ar = coefficients[..., int(CONSTANT in columns) :]
    phi1 = ar[..., 0] if ar.shape[-1] > 0 else np.zeros_like(sse)
    phi2 = ar[..., 1] if ar.shape[-1] > 1 else np.zeros_like(sse)
    return np.where(_ar_is_stationary(phi1, phi2), sse, np.inf), coefficients


def _filtered_gram(design: np.ndarray, thetas: np.ndarray) -> np.ndarray:
    """Cross-products [n, G, 4, 4] of the design columns after filtering by (1 + θB)⁻¹ from a zero start."""
    n_rows, n_times, n_columns = design.shape
    filtered = np.empty((n_rows, thetas.shape[1], n_times, n_columns))
    filtered[:, :, 0] = design[:, None, 0]
    for t in range(1, n_times):
        filtered[:, :, t] = design[:, None, t] - thetas[..., None] * filtered[:, :, t - 1]
    return np.matmul(filtered.swapaxes(-1, -2), filtered)


def _ar_is_stationary(phi1: np.ndarray, phi2: np.ndarray) -> np.ndarray:
    """Whether every inverse root of 1 − φ1 z − φ2 z² has modulus at most MAX_INVERSE_ROOT."""
    discriminant = phi1**2 + 4 * phi2
    root_of_abs = np.sqrt(np.abs(discriminant))
    real_roots_max = (np.abs(phi1) + root_of_abs) / 2  # the larger |λ| of λ² − φ1 λ − φ2 = 0 when real
    complex_modulus = np.sqrt(np.abs(phi2))  # |λ|² = −φ2 when the pair is complex
    largest = np.where(discriminant >= 0, real_roots_max, complex_modulus)
    return largest <= MAX_INVERSE_ROOT


def _conditional_aicc(sse: np.ndarray, n_fitted: int, n_params: int) -> np.ndarray:
    """AICc of the conditional Gaussian likelihood at σ² = SSE / n (floored); inf where the fit was rejected."""
    with np.errstate(invalid="ignore"):
        sigma2 = np.maximum(sse / n_fitted, SIGMA2_FLOOR)
        minus_two_loglik = n_fitted * (np.log(2 * np.pi * sigma2) + 1)
        aicc = minus_two_loglik + 2 * n_params + 2 * n_params * (n_params + 1) / (n_fitted - n_params - 1)
    return np.where(np.isfinite(sse), aicc, np.inf)


def _named_coefficients(coefficients: np.ndarray, has_constant: bool, p: int, theta: np.ndarray) -> dict[str, np.ndarray]:
    """Spread a candidate's coefficient columns into the full (constant, φ1, φ2, θ) parametrisation."""
    zeros = np.zeros(len(coefficients))
    named = {"constant": zeros, "phi1": zeros, "phi2": zeros, "theta": theta}
    offset = int(has_constant)
    if has_constant:
        named["constant"] = coefficients[:, 0]
    for lag in range(1, p + 1):
        named[f"phi{lag}"] = coefficients[:, offset + lag - 1]
    return named


def _one_step_forecast(w: np.ndarray, constant, phi1, phi2, theta) -> tuple[np.ndarray, np.ndarray]:
    """Run the CLS residual recursion for the chosen parameters: the forecast of the next w and the residual σ."""
    residual = np.zeros(len(w))
    sum_sq = np.zeros(len(w))
    length = w.shape[1]
    for t in range(CONDITIONING_LENGTH, length):
        residual = w[:, t] - constant - phi1 * w[:, t - 1] - phi2 * w[:, t - 2] - theta * residual
        sum_sq += residual**2
    next_w = constant + phi1 * w[:, -1] + phi2 * w[:, -2] + theta * residual
    return next_w, np.sqrt(sum_sq / (length - CONDITIONING_LENGTH))
