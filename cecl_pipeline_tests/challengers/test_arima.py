"""The vectorised auto-ARIMA challenger: hand-derived answers, shapes, and agreement with pmdarima on real windows."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from cecl_pipeline.challengers import arima
from cecl_pipeline.challengers.arima import auto_arima
from cecl_pipeline.challengers.kpss import kpss_level_statistic, needs_differencing
from cecl_pipeline.challengers.scale import naive_scale
from cecl_pipeline_tests.challengers.real_windows import WINDOW, real_windows, single_blas_thread

Z_80PCT = 1.2815515655446004  # the 90% normal quantile: an 80% interval is mean ± Z_80PCT σ


def subsample(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic random subsample of the real windows."""
    histories, targets = real_windows()
    rows = np.sort(np.random.default_rng(seed).choice(len(histories), size=size, replace=False))
    return histories[rows], targets[rows]


def pmdarima_forecasts(histories: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pmdarima's auto_arima one-step forecasts and σ (from its 80% interval), one series at a time."""
    import pmdarima

    means, stds = [], []
    for history in histories:
        with warnings.catch_warnings(), single_blas_thread():
            warnings.simplefilter("ignore")
            # start_q=1: pmdarima's default start_q=2 is rejected when max_q=1
            model = pmdarima.auto_arima(
                history, seasonal=False, information_criterion="aicc", max_p=2, max_q=1, start_q=1, max_d=1, suppress_warnings=True, error_action="ignore"
            )
            mean, interval = model.predict(1, return_conf_int=True, alpha=0.2)
        means.append(mean[0])
        stds.append((interval[0, 1] - interval[0, 0]) / (2 * Z_80PCT))
    return np.array(means), np.array(stds)


def assert_close_to_pmdarima(histories: np.ndarray, targets: np.ndarray) -> None:
    """Ours must forecast about as well as pmdarima and, on most series, close to it."""
    ours, our_std = auto_arima(histories)
    reference, reference_std = pmdarima_forecasts(histories)
    assert np.isfinite(ours).all() and np.isfinite(our_std).all()
    our_mae = np.mean(np.abs(ours - targets))
    reference_mae = np.mean(np.abs(reference - targets))
    assert our_mae <= 1.05 * reference_mae, (our_mae, reference_mae)
    # Conditional and exact likelihoods pick different orders on some 12-point series, so ask for most, not all.
    gap = np.abs(ours - reference) / naive_scale(histories)
    assert np.median(gap) < 0.3, np.median(gap)
    assert np.mean(gap < 0.5) >= 0.65, np.mean(gap < 0.5)
    # Conditional σ is over fewer points than the exact likelihood's, but must be of the same size.
    assert 0.5 < np.median(our_std / reference_std) < 2.0


def test_forecasts_match_pmdarima_on_real_windows():
    assert_close_to_pmdarima(*subsample(40, seed=0))


@pytest.mark.slow
def test_forecasts_match_pmdarima_on_more_real_windows():
    assert_close_to_pmdarima(*subsample(250, seed=1))


def test_differencing_order_matches_pmdarima_ndiffs_on_real_windows():
    from pmdarima.arima import ndiffs

    histories, _ = subsample(200, seed=5)
    reference = np.array([ndiffs(history, test="kpss", max_d=1) for history in histories])
    assert reference.min() == 0 and reference.max() == 1  # both orders occur, so the comparison means something
    np.testing.assert_array_equal(needs_differencing(histories).astype(int), reference)


def test_kpss_statistic_by_hand():
    # y = (1, 2, 3, 4): e = (−1.5, −0.5, 0.5, 1.5), partial sums (−1.5, −2, −1.5, 0): η = 8.5 / 16.
    # Short lags for n = 4: trunc(4 · 0.04^¼) = 1, Bartlett weight ½; s² = 5/4, lag-1 products sum to 0.75 − 0.25 + 0.75 = 1.25.
    # Long-run variance = 5/4 + 2 · ½ · 1.25 / 4 = 1.5625, so the statistic is 0.53125 / 1.5625 = 0.34.
    np.testing.assert_allclose(kpss_level_statistic(np.array([[1.0, 2.0, 3.0, 4.0]])), [0.34])


def exact_ar1(constant: float, phi: float, first: float, length: int = WINDOW) -> np.ndarray:
    """y_t = constant + φ y_{t−1}, no noise."""
    values = [first]
    for _ in range(length - 1):
        values.append(constant + phi * values[-1])
    return np.array(values)


@pytest.mark.parametrize(("constant", "phi"), [(1.0, -0.5), (3.0, -0.8), (0.5, 0.3)])
def test_exact_ar1_gets_its_own_next_value(constant, phi):
    history = exact_ar1(constant, phi, first=4.0)
    mean, std = auto_arima(history[None])
    np.testing.assert_allclose(mean, [constant + phi * history[-1]], rtol=1e-7)
    assert 0 <= std[0] < 1e-6


def test_oscillating_ar1_is_not_differenced():
    assert not needs_differencing(exact_ar1(1.0, -0.5, first=4.0)[None])[0]


def test_linear_trend_is_differenced_and_continues():
    history = 2.0 + 0.3 * np.arange(WINDOW)
    assert needs_differencing(history[None])[0]
    mean, std = auto_arima(history[None])
    np.testing.assert_allclose(mean, [2.0 + 0.3 * WINDOW], rtol=1e-9)
    assert 0 <= std[0] < 1e-6


def test_drift_with_wobble_continues_the_drift():
    # Increments 0.5 ± 0.02: whatever ARMA fits them, the next increment lies within their range.
    history = np.cumsum(0.5 + 0.02 * (-1.0) ** np.arange(WINDOW))
    assert needs_differencing(history[None])[0]
    mean, _ = auto_arima(history[None])
    assert history[-1] + 0.45 < mean[0] < history[-1] + 0.55


@pytest.mark.parametrize("level", [0.0, 0.01, 3.3, 1e6])
def test_constant_series_forecasts_the_constant(level):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean, std = auto_arima(np.full((3, WINDOW), level))
    np.testing.assert_array_equal(mean, level)
    np.testing.assert_array_equal(std, 0.0)


def test_scaling_a_series_scales_its_forecast():
    histories, _ = subsample(20, seed=2)
    mean, std = auto_arima(histories)
    scaled_mean, scaled_std = auto_arima(250.0 * histories)
    np.testing.assert_allclose(scaled_mean, 250.0 * mean, rtol=1e-8)
    np.testing.assert_allclose(scaled_std, 250.0 * std, rtol=1e-8)


def test_no_series_gives_empty_outputs():
    mean, std = auto_arima(np.empty((0, WINDOW)))
    assert mean.shape == std.shape == (0,)


def test_rows_with_nan_get_nan_and_leave_the_others_alone():
    histories, _ = subsample(6, seed=3)
    holed = histories.copy()
    holed[1, 4] = np.nan
    holed[4, -1] = np.nan
    mean, std = auto_arima(holed)
    assert np.isnan(mean[[1, 4]]).all() and np.isnan(std[[1, 4]]).all()
    clean_mean, clean_std = auto_arima(histories[[0, 2, 3, 5]])
    np.testing.assert_array_equal(mean[[0, 2, 3, 5]], clean_mean)
    np.testing.assert_array_equal(std[[0, 2, 3, 5]], clean_std)


def test_vectorised_equals_row_by_row_across_chunks(monkeypatch):
    histories, _ = subsample(30, seed=4)
    histories = np.vstack([histories, np.full(WINDOW, 2.0), 1.0 + 0.1 * np.arange(WINDOW)])
    monkeypatch.setattr(arima, "CHUNK_ROWS", 7)
    mean, std = auto_arima(histories)
    one_by_one = [auto_arima(history[None]) for history in histories]
    np.testing.assert_allclose(mean, [m[0] for m, _ in one_by_one], rtol=1e-10)
    np.testing.assert_allclose(std, [s[0] for _, s in one_by_one], rtol=1e-10)


def test_awkward_inputs_raise_no_warnings():
    awkward = np.array(
        [
            [0.0] * 11 + [1.0],  # one jump at the end
            [1.0, 0.0] * 6,  # perfect alternation
            [5.0] * 6 + [6.0] * 6,  # a level shift
            np.linspace(1e-9, 2e-9, WINDOW),  # tiny values
            np.linspace(-1e9, 1e9, WINDOW) ** 2,  # huge values
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean, std = auto_arima(awkward)
        short_mean, _ = auto_arima(np.array([[1.0, 2.0, 4.0], [3.0, 3.0, 3.0]]))
    assert np.isfinite(mean).all() and (std >= 0).all()
    assert np.isnan(short_mean[0]) and short_mean[1] == 3.0  # too short to fit, but a constant is still a constant


def test_rejects_non_matrix_input():
    with pytest.raises(ValueError, match="2-D"):
        auto_arima(np.arange(WINDOW, dtype=float))
