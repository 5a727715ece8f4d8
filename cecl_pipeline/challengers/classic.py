"""The seed's per-series baselines, each fitted with its library on one history: (mean, std), std NaN for point forecasts.

- ``persistence``: last quarter's rate. ``mean_4q``: the mean of the last four quarters.
- ``ar1``: AutoReg with one lag and a constant (statsmodels), Gaussian interval from the residual variance.
- ``arima_110``: ARIMA(1,1,0) (statsmodels), interval from its forecast standard error.
- ``ar1_garch11``: AR(1) mean with GARCH(1,1) variance (``arch``), the seed's ARCH comparison.
"""

from __future__ import annotations

import math

import numpy as np
from arch import arch_model

# Imported here, not inside the fits: on import statsmodels puts "always" filters for its own warnings
# in front of ours, and a fit inside catch_warnings would then still print them.
from statsmodels.tsa.ar_model import AutoReg
from statsmodels.tsa.arima.model import ARIMA


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
