"""Classical baselines for next quarter's NCO rate, fitted per series on the same 12 quarters the prompt shows.

- ``persistence``: last quarter's rate.
- ``mean_4q``: the mean of the last four quarters.
- ``ar1``: AutoReg with one lag and a constant (statsmodels), Gaussian interval from the residual variance.
- ``arima_110``: ARIMA(1,1,0) (statsmodels), interval from its forecast standard error.
- ``ar1_garch11``: AR(1) mean with GARCH(1,1) variance (``arch``), the seed's ARCH comparison.

Twelve points are few for the fitted models: a fit that fails, does not converge or forecasts a
non-finite value falls back to persistence, and the row says so (``fallback``), so the report can
count it instead of hiding it. Nothing dated at or after the target quarter may enter: the history
quarters are checked before any fit.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from arch import arch_model

# Imported here, not inside the fits: on import statsmodels puts "always" filters for its own warnings
# in front of ours, and a fit inside catch_warnings would then still print them.
from statsmodels.tsa.ar_model import AutoReg
from statsmodels.tsa.arima.model import ARIMA

from cecl_pipeline.forecast.metrics import crps_gaussian, forecast_rows
from cecl_pipeline.panel.windows import assert_no_lookahead

Z90 = 1.2815515655446004  # standard normal 0.9 quantile: the 10–90 band is mean ± Z90·σ
BASELINES = ("persistence", "mean_4q", "ar1", "arima_110", "ar1_garch11")

Fit = Callable[[np.ndarray], tuple[float, float]]  # history → (mean, std); std NaN for point forecasts


def persistence(y: np.ndarray) -> tuple[float, float]:
    return float(y[-1]), math.nan


def mean_4q(y: np.ndarray) -> tuple[float, float]:
    return float(np.mean(y[-4:])), math.nan


def ar1(y: np.ndarray) -> tuple[float, float]:
    result = AutoReg(y, lags=1, trend="c").fit()
    return float(result.forecast(1)[0]), float(math.sqrt(result.sigma2))


def arima_110(y: np.ndarray) -> tuple[float, float]:
    forecast = ARIMA(y, order=(1, 1, 0)).fit().get_forecast(1)
    return float(forecast.predicted_mean[0]), float(forecast.se_mean[0])


def ar1_garch11(y: np.ndarray) -> tuple[float, float]:
    result = arch_model(y, mean="AR", lags=1, vol="GARCH", p=1, q=1, rescale=False).fit(disp="off", show_warning=False)
    if result.convergence_flag != 0:
        raise ArithmeticError("GARCH fit did not converge")
    forecast = result.forecast(horizon=1, reindex=False)
    return float(forecast.mean.iloc[-1, 0]), float(math.sqrt(forecast.variance.iloc[-1, 0]))


FITS: dict[str, Fit] = {"persistence": persistence, "mean_4q": mean_4q, "ar1": ar1, "arima_110": arima_110, "ar1_garch11": ar1_garch11}


def fit_or_fall_back(fit: Fit, y: np.ndarray) -> tuple[float, float, bool]:
    """(mean, std, fell_back): persistence when the fit raises or gives a non-finite forecast."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # statsmodels and arch warn on every short-series fit
            mean, std = fit(y)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError):
        return float(y[-1]), math.nan, True
    if not math.isfinite(mean) or (not math.isnan(std) and not math.isfinite(std)):
        return float(y[-1]), math.nan, True
    return mean, std, False


def baseline_forecasts(examples: pd.DataFrame, target_quarter: str, models: tuple[str, ...] = BASELINES) -> pd.DataFrame:
    """Each baseline's forecast for every example row (``prompt_id, entity_id, segment, history_quarters, history, target``).

    Returns the long forecasts table (see ``forecast.metrics``) plus ``fallback``.
    """
    unknown = [m for m in models if m not in FITS]
    if unknown:
        raise ValueError(f"unknown baseline(s) {', '.join(unknown)}: choose from {', '.join(FITS)}")
    assert_no_lookahead(examples["history_quarters"].explode(), target_quarter, "the baselines' history")
    histories = [np.asarray(h, float) for h in examples["history"]]
    frames = [_one_model(examples, histories, name, target_quarter) for name in models]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _one_model(examples: pd.DataFrame, histories: list[np.ndarray], name: str, target_quarter: str) -> pd.DataFrame:
    fitted = np.array([fit_or_fall_back(FITS[name], y) for y in histories], float).reshape(-1, 3)
    mean, std, fell_back = fitted[:, 0], fitted[:, 1], fitted[:, 2].astype(bool)
    actual = examples["target"].to_numpy(float)
    quantiles = (mean - Z90 * std, np.where(np.isnan(std), np.nan, mean), mean + Z90 * std)
    crps = np.where(np.isnan(std), np.abs(mean - actual), crps_gaussian(mean, np.nan_to_num(std), actual))
    return forecast_rows(examples, target_quarter, name, mean, quantiles, crps, fallback=fell_back)
