"""The challengers' rows of the walk-forward's forecasts table, fitted per series on the same 12 quarters the prompt shows.

The fits live in ``cecl_pipeline.challengers``; this module checks that nothing dated at or after
the target quarter enters them and lays their forecasts out as the long table of ``forecast.metrics``,
with a Gaussian 10/50/90 band where a challenger gives a std and ``fallback`` where a fit failed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cecl_pipeline.challengers.registry import CHALLENGERS, ChallengerForecast, challenger_forecasts, check_names
from cecl_pipeline.forecast.metrics import crps_gaussian, forecast_rows
from cecl_pipeline.panel.windows import assert_no_lookahead

Z90 = 1.2815515655446004  # standard normal 0.9 quantile: the 10–90 band is mean ± Z90·σ


def baseline_forecasts(examples: pd.DataFrame, target_quarter: str, models: tuple[str, ...] = CHALLENGERS) -> pd.DataFrame:
    """Each challenger's forecast for every example row (``prompt_id, entity_id, segment, history_quarters, history, target``).

    Returns the long forecasts table (see ``forecast.metrics``) plus ``fallback``.
    """
    models = check_names(models)
    assert_no_lookahead(examples["history_quarters"].explode(), target_quarter, "the baselines' history")
    fitted = challenger_forecasts(list(examples["history"]), models)
    frames = [_rows(examples, target_quarter, name, forecast) for name, forecast in fitted.items()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _rows(examples: pd.DataFrame, target_quarter: str, name: str, forecast: ChallengerForecast) -> pd.DataFrame:
    mean, std = forecast.mean, forecast.std
    actual = examples["target"].to_numpy(float)
    quantiles = (mean - Z90 * std, np.where(np.isnan(std), np.nan, mean), mean + Z90 * std)
    crps = np.where(np.isnan(std), np.abs(mean - actual), crps_gaussian(mean, np.nan_to_num(std), actual))
    return forecast_rows(examples, target_quarter, name, mean, quantiles, crps, fallback=forecast.fallback)
