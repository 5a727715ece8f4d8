"""The vectorised ETS and Theta challengers against statsmodels on real NCO windows, against hand-derived answers, and on shapes."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from statsmodels.tsa.forecasting.theta import ThetaModel
from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing
from statsmodels.tsa.statespace.sarimax import SARIMAX

from cecl_pipeline.challengers import ets, linear_smoothing
from cecl_pipeline.challengers import theta as theta_module
from cecl_pipeline.challengers.ets import auto_ets
from cecl_pipeline.challengers.scale import naive_scale
from cecl_pipeline.challengers.theta import theta
from cecl_pipeline_tests.challengers.real_windows import WINDOW, real_windows, single_blas_thread

INTERVAL_Z = 1.2815515655446004  # the 80% interval's half-width in standard deviations
SUBSAMPLE_EVERY = 5  # ~150 of the ~770 windows keep the default run's statsmodels loops under ~20 s


def subsample(histories, targets, every: int = SUBSAMPLE_EVERY):
    return histories[::every], targets[::every]


def statsmodels_ets(history: np.ndarray) -> np.ndarray:
    """statsmodels ETSModel fitted as ANN, AAN, AAdN: rows (AICc, forecast, h=1 std), one per model, in ``ets.CANDIDATES`` order."""
    rows = []
    for spec in ets.CANDIDATES:
        result = ETSModel(history, error="add", trend="add" if spec.with_trend else None, damped_trend=spec.damped).fit(disp=False)
        # get_prediction's h=1 variance for these models is mse · 1 (see test_statsmodels_h1_std_is_root_mse)
        rows.append((result.aicc, float(np.asarray(result.forecast(1))[0]), float(np.sqrt(result.mse))))
    return np.array(rows)


def statsmodels_theta(history: np.ndarray) -> np.ndarray:
    """statsmodels ThetaModel: (forecast, h=1 std from the 80% interval, SES α, then its ARIMA(0,1,1)+drift fit: drift, θ, σ², log-likelihood)."""
    result = ThetaModel(history, period=1, deseasonalize=False).fit()
    interval = result.prediction_intervals(1, alpha=0.2)
    half_width = (float(interval["upper"].iloc[0]) - float(interval["lower"].iloc[0])) / 2
    # The same fit ThetaModelResults.sigma2 makes, repeated to read its parameters and likelihood
    variance_fit = SARIMAX(history, order=(0, 1, 1), trend="c").fit(disp=False)
    ses_alpha = float(result.params["alpha"])
    return np.array([float(np.asarray(result.forecast(1))[0]), half_width / INTERVAL_Z, ses_alpha, *variance_fit.params, variance_fit.llf])


def ses_log_likelihood(history: np.ndarray, alpha: float) -> float:
    """statsmodels' own likelihood of the SES that ThetaModel fits, at a given α."""
    return float(ExponentialSmoothing(history, initial_level=history[0], initialization_method="known").loglike(np.array([alpha])))


def ma_drift_log_likelihood(history: np.ndarray, drift: float, ma: float, sigma2: float) -> float:
    return float(SARIMAX(history, order=(0, 1, 1), trend="c").loglike(np.array([drift, ma, sigma2])))


def run_quietly(compute):
    # One BLAS thread: statsmodels' Kalman filter makes thousands of tiny BLAS calls, which crawl (5-10×) when
    # BLAS threads contend for a small machine's cores. (threadpoolctl limits only libraries already loaded,
    # hence statsmodels' imports at the top of this module.)
    with warnings.catch_warnings(), single_blas_thread():
        warnings.simplefilter("ignore")  # statsmodels' convergence and start-parameter chatter
        return compute()


# --- against statsmodels on real windows -------------------------------------------------------------------------


def check_theta_against_statsmodels(histories, targets):
    reference = np.array(run_quietly(lambda: [statsmodels_theta(h) for h in histories]))
    reference_mean, reference_std, reference_alpha, reference_ma, reference_llf = reference[:, [0, 1, 2, 4, 6]].T
    np.testing.assert_allclose(reference_std, np.sqrt(reference[:, 5]), rtol=1e-6)  # the refit above is ThetaModel's
    mean, std = theta(histories)
    with np.errstate(all="ignore"):
        fit = theta_module._fit_parameters(histories)
    # Both estimators are maximum likelihood, so ours must reach at least statsmodels' likelihood (by its own
    # likelihood functions) on every series; where statsmodels' optimiser stops in a local optimum, ours is higher.
    pairs = zip(histories, fit.alpha, reference_alpha, strict=True)
    our_ses_llf, their_ses_llf = np.array(run_quietly(lambda: [(ses_log_likelihood(h, ours), ses_log_likelihood(h, theirs)) for h, ours, theirs in pairs])).T
    assert np.all(our_ses_llf >= their_ses_llf - 1e-6)
    ma_fits = zip(histories, fit.drift, fit.ma, fit.sigma2, strict=True)
    our_ma_llf = np.array(run_quietly(lambda: [ma_drift_log_likelihood(h, drift, ma, sigma2) for h, drift, ma, sigma2 in ma_fits]))
    assert np.all(our_ma_llf >= reference_llf - 1e-6)
    # Where both found the same optimum, only statsmodels' optimiser tolerance separates the answers.
    same_alpha = np.abs(fit.alpha - reference_alpha) < 1e-3
    assert same_alpha.mean() > 0.9
    forecast_gap = np.abs(mean - reference_mean)[same_alpha] / naive_scale(histories[same_alpha])
    assert np.median(forecast_gap) < 1e-4 and forecast_gap.max() < 1e-2
    same_ma = np.abs(fit.ma - reference_ma) < 1e-2  # SARIMAX stops a little short of a θ = −1 boundary optimum
    assert same_ma.mean() > 0.8
    std_gap = (np.abs(std - reference_std) / reference_std)[same_ma]
    assert np.median(std_gap) < 1e-3 and std_gap.max() < 1e-2
    assert np.mean(np.abs(mean - targets)) <= 1.03 * np.mean(np.abs(reference_mean - targets))


def check_ets_against_statsmodels(histories, targets, mae_tolerance: float):
    reference = np.stack(run_quietly(lambda: [statsmodels_ets(h) for h in histories]), axis=1)  # [model, series, (aicc, mean, std)]
    with np.errstate(all="ignore"):
        criteria, model_means, model_stds = ets._fit_candidates(histories)
    # Each model's least squares reaches at least statsmodels' optimum (a std no larger), up to its optimiser's tolerance.
    assert np.all(model_stds <= reference[..., 2] * (1 + 1e-4))
    mean, std = auto_ets(histories)
    rows = np.arange(len(histories))
    ours, theirs = np.argmin(criteria, axis=0), np.argmin(reference[..., 0], axis=0)
    np.testing.assert_allclose(mean, model_means[ours, rows], rtol=1e-12)
    np.testing.assert_allclose(std, model_stds[ours, rows], rtol=1e-12)
    reference_mean = reference[theirs, rows, 1]
    # The AICc choice can differ where statsmodels' L-BFGS stops at a local optimum, so the overall criterion is
    # accuracy, and close agreement is asserted where both choose the same model.
    assert np.mean(np.abs(mean - targets)) <= mae_tolerance * np.mean(np.abs(reference_mean - targets))
    same_model = ours == theirs
    assert same_model.mean() > 0.85
    gap = np.abs(mean - reference_mean) / naive_scale(histories)
    assert np.median(gap[same_model]) < 1e-3


def test_theta_matches_statsmodels_on_real_windows():
    check_theta_against_statsmodels(*subsample(*real_windows()))


def test_ets_matches_statsmodels_on_real_windows():
    # On ~150 windows the few series where the AICc choices differ move the MAE ratio by up to ~±5%; the 3%
    # accuracy criterion is asserted on all windows in the slow test below.
    check_ets_against_statsmodels(*subsample(*real_windows()), mae_tolerance=1.10)


@pytest.mark.slow
def test_theta_matches_statsmodels_on_all_real_windows():
    check_theta_against_statsmodels(*real_windows())


@pytest.mark.slow
def test_ets_matches_statsmodels_on_all_real_windows():
    check_ets_against_statsmodels(*real_windows(), mae_tolerance=1.03)


def test_statsmodels_h1_std_is_root_mse():
    """The reference above reads sqrt(mse) for the h=1 std: check it against get_prediction's interval."""
    history = pd.Series(real_windows()[0][7], index=pd.period_range("2000Q1", periods=WINDOW, freq="Q"))
    models = [ETSModel(history, error="add", trend=trend, damped_trend=damped) for trend, damped in ((None, False), ("add", False), ("add", True))]
    for result in run_quietly(lambda: [model.fit(disp=False) for model in models]):
        frame = result.get_prediction(start=WINDOW, end=WINDOW).summary_frame(alpha=0.2)
        half_width = (frame["pi_upper"].iloc[0] - frame["pi_lower"].iloc[0]) / 2
        assert half_width / INTERVAL_Z == pytest.approx(np.sqrt(result.mse), rel=1e-9)


# --- answers derivable by hand -----------------------------------------------------------------------------------


def test_linear_history_is_continued_by_ets():
    """A line is fitted exactly by Holt (SSE 0), so AICc picks it and the forecast is the next point on the line."""
    steps = np.arange(WINDOW)
    histories = np.stack([2.0 + 0.25 * steps, 5.0 - 0.1 * steps, 0.3 + 0.01 * steps])
    mean, std = auto_ets(histories)
    np.testing.assert_allclose(mean, histories[:, -1] + (histories[:, 1] - histories[:, 0]), rtol=0, atol=1e-6)
    np.testing.assert_allclose(std, 0.0, atol=1e-6)


def test_theta_on_a_linear_history_adds_half_the_slope():
    """On a line, SES's SSE falls towards α = 1 (forecast → last value), and the trend term → b0/2 there."""
    steps = np.arange(WINDOW)
    histories = np.stack([2.0 + 0.25 * steps, 5.0 - 0.1 * steps])
    slopes = histories[:, 1] - histories[:, 0]
    mean, std = theta(histories)
    assert np.all(np.abs(mean - (histories[:, -1] + slopes / 2)) < 1e-3 * np.abs(slopes))
    np.testing.assert_allclose(std, 0.0, atol=1e-6)  # constant differences: the drift alone fits them


@pytest.mark.parametrize("method", [auto_ets, theta])
def test_constant_history_forecasts_the_constant_without_warnings(method):
    histories = np.array([[0.0] * WINDOW, [1.37] * WINDOW, [1e-3] * WINDOW])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean, std = method(histories)
    np.testing.assert_allclose(mean, histories[:, 0], rtol=1e-12, atol=1e-15)
    assert np.all(std >= 0) and np.all(std < 1e-12)


@pytest.mark.parametrize("method", [auto_ets, theta])
def test_awkward_histories_give_finite_results_without_warnings(method):
    step = np.r_[np.zeros(6), np.ones(6)]
    spike = np.r_[np.zeros(11), 5.0]
    alternating = np.tile([0.1, 0.2], 6)
    tiny = 1e-9 * np.arange(WINDOW) % 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean, std = method(np.stack([step, spike, alternating, tiny]))
    assert np.isfinite(mean).all() and np.isfinite(std).all() and (std >= 0).all()


# --- shapes ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", [auto_ets, theta])
def test_empty_panel(method):
    mean, std = method(np.empty((0, WINDOW)))
    assert mean.shape == (0,) and std.shape == (0,)


@pytest.mark.parametrize("method", [auto_ets, theta])
def test_rows_with_nan_give_nan_and_leave_the_others_alone(method):
    histories = real_windows()[0][:4].copy()
    clean_mean, clean_std = method(histories)
    histories[1, 3] = np.nan
    mean, std = method(histories)
    assert np.isnan(mean[1]) and np.isnan(std[1])
    np.testing.assert_array_equal(np.delete(mean, 1), np.delete(clean_mean, 1))
    np.testing.assert_array_equal(np.delete(std, 1), np.delete(clean_std, 1))


@pytest.mark.parametrize("method", [auto_ets, theta])
def test_vectorised_equals_row_by_row_and_chunking_changes_nothing(method, monkeypatch):
    histories = real_windows()[0][::40]
    mean, std = method(histories)
    rows = np.array([np.concatenate(method(h[None, :])) for h in histories])
    np.testing.assert_allclose(mean, rows[:, 0], rtol=1e-12)
    np.testing.assert_allclose(std, rows[:, 1], rtol=1e-12)
    monkeypatch.setattr(linear_smoothing, "CHUNK_ROWS", 3)
    chunked_mean, chunked_std = method(histories)
    np.testing.assert_allclose(chunked_mean, mean, rtol=1e-12)
    np.testing.assert_allclose(chunked_std, std, rtol=1e-12)


@pytest.mark.parametrize("method", [auto_ets, theta])
def test_too_short_histories_give_nan_and_wrong_rank_raises(method):
    mean, std = method(np.ones((2, 3)))
    assert np.isnan(mean).all() and np.isnan(std).all()
    with pytest.raises(ValueError):
        method(np.ones(WINDOW))
