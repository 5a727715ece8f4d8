"""Every challenger by name, fitted on many histories at once: a forecast, its std and whether it fell back, per series.

Twelve points are few: a fit that fails, does not converge or forecasts a non-finite value falls back
to persistence and says so (``fallback``), so a report can count it instead of hiding it.

``comb`` is the M4 "Comb"-style benchmark: the equal-weight mean of automatic ETS, automatic ARIMA
and Theta. Its 10–90 band averages theirs (the mean of Gaussian quantiles is the quantile of a
Gaussian with the mean std), so its std is the mean of theirs.

``naive_comb`` is the equal-weight mean of persistence and ``comb``: the no-change forecast and the
fitted models get equal say. Twelve quarters are short and NCO rates move in regimes, so
persistence is often the best single method and the fitted models lag behind a turn. Across the Fed
files (2000–2009, 2010–2015, 2016 on) and the synthetic panel this mean was the best or within 3%
of the best method in every period, where ``comb`` was up to 15% behind (benchmarks/RESULTS.md).
Persistence gives no band, so neither does it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from cecl_pipeline.challengers import classic
from cecl_pipeline.challengers.arima import auto_arima
from cecl_pipeline.challengers.ets import auto_ets
from cecl_pipeline.challengers.names import CHALLENGERS
from cecl_pipeline.challengers.theta import theta

VectorFit = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # [N, T] → (mean [N], std [N]); NaN where no fit
SeriesFit = Callable[[np.ndarray], tuple[float, float]]  # one history → (mean, std); raises where no fit


def _persistence(histories: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return histories[:, -1].copy(), np.full(len(histories), np.nan)


def _mean_4q(histories: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return histories[:, -4:].mean(axis=1), np.full(len(histories), np.nan)


POINT_ONLY = ("persistence", "mean_4q")
VECTORISED: dict[str, VectorFit] = {"persistence": _persistence, "mean_4q": _mean_4q, "auto_ets": auto_ets, "auto_arima": auto_arima,
                                    "theta": theta}
PER_SERIES: dict[str, SeriesFit] = {"ar1": classic.ar1, "arima_110": classic.arima_110, "ar1_garch11": classic.ar1_garch11}
COMBINATIONS: dict[str, tuple[str, ...]] = {"comb": ("auto_ets", "auto_arima", "theta"), "naive_comb": ("persistence", "comb")}


@dataclass(frozen=True)
class ChallengerForecast:
    """One challenger's one-step-ahead forecasts for N series."""

    mean: np.ndarray  # [N]
    std: np.ndarray  # [N]; NaN for point forecasts (and fallbacks)
    fallback: np.ndarray  # [N] bool: the fit failed and persistence stands in


def check_names(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` as a tuple; an unknown one is refused with the known ones."""
    names = tuple(names)
    unknown = [n for n in names if n not in CHALLENGERS]
    if unknown:
        raise ValueError(f"unknown challenger(s) {', '.join(unknown)}: choose from {', '.join(CHALLENGERS)}")
    return names


def as_matrix(histories) -> np.ndarray:
    """Histories (an [N, T] array or N equal-length sequences) as a float [N, T] array."""
    if isinstance(histories, np.ndarray) and histories.ndim == 2:
        return histories.astype(float, copy=False)
    rows = [np.asarray(h, float) for h in histories]
    if len({len(r) for r in rows}) > 1:
        raise ValueError(f"histories of different lengths ({sorted({len(r) for r in rows})}): the challengers need one window length")
    return np.vstack(rows) if rows else np.empty((0, 0))


def challenger_forecasts(histories, names: Iterable[str] = CHALLENGERS) -> dict[str, ChallengerForecast]:
    """Each named challenger's forecasts for every history, in the order of ``names``."""
    names = check_names(names)
    matrix = as_matrix(histories)
    if not len(matrix):
        return {name: ChallengerForecast(np.empty(0), np.empty(0), np.empty(0, bool)) for name in names}
    fitted: dict[str, ChallengerForecast] = {}
    return {name: _forecast(name, matrix, fitted) for name in names}


def _forecast(name: str, histories: np.ndarray, fitted: dict[str, ChallengerForecast]) -> ChallengerForecast:
    """``name``'s forecasts, fitted (a combination: from its parts) once per call of ``challenger_forecasts``."""
    if name not in fitted:
        parts = COMBINATIONS.get(name)
        fitted[name] = _combine(*(_forecast(p, histories, fitted) for p in parts)) if parts else _fit(name, histories)
    return fitted[name]


def _fit(name: str, histories: np.ndarray) -> ChallengerForecast:
    if name in PER_SERIES:
        rows = [_series_or_nan(PER_SERIES[name], y) for y in histories]
        mean, std = (np.array(column, float) for column in zip(*rows, strict=True)) if rows else (np.empty(0), np.empty(0))
    else:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            mean, std = VECTORISED[name](histories)
    return _with_fallback(histories, mean, std, point_only=name in POINT_ONLY)


def _series_or_nan(fit: SeriesFit, y: np.ndarray) -> tuple[float, float]:
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # statsmodels and arch warn on every short-series fit
            return fit(y)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError):
        return math.nan, math.nan


def _with_fallback(histories: np.ndarray, mean: np.ndarray, std: np.ndarray, point_only: bool) -> ChallengerForecast:
    mean, std = np.asarray(mean, float), np.asarray(std, float)
    failed = ~np.isfinite(mean) | (~np.isfinite(std) & (not point_only)) | (std < 0)
    return ChallengerForecast(np.where(failed, histories[:, -1], mean), np.where(failed | point_only, np.nan, std), failed)


def _combine(*parts: ChallengerForecast) -> ChallengerForecast:
    mean = np.mean([p.mean for p in parts], axis=0)
    std = np.mean([p.std for p in parts], axis=0)  # NaN where any part fell back: no band rather than a lopsided one
    return ChallengerForecast(mean, std, np.any([p.fallback for p in parts], axis=0))
