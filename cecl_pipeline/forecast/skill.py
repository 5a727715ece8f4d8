"""Skill against the challengers, as forecasters and model validators read it.

Every model other than the policy is a challenger, whatever its name. For every model: MAE relative
to persistence's on the same rows (``rel_mae``), the mean error in units of the series' own scale
(``mase``) and the geometric mean of its error relative to persistence's (``gmrae``). For the policy
alone, against the best challenger (the challenger with the lowest overall MAE): the share of series
it beats on MAE and a Diebold–Mariano test on absolute-error loss.

Rows without a point forecast are left out, as in ``metrics.summarise``; a comparison of two models
uses only the rows (quarter, series) where both gave one. The targets the walk-forward is judged by
are here too (``targets``, ``target_lines``), so every command that prints them prints the same.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from cecl_pipeline.forecast.metrics import series_scale
from cecl_pipeline.forecast.walkforward import POLICY_MODEL

PERSISTENCE = "persistence"
SERIES = ["entity_id", "segment"]
ROW = ["quarter", *SERIES]
ERROR_FLOOR = 0.005  # pp: half the 0.01 pp rounding unit of published rates, below which an error is not measurable
SKILL_COLUMNS = ["rel_mae", "mase", "gmrae", "share_beating_best", "dm_stat", "dm_pvalue", "best_challenger"]


def absolute_errors(forecasts: pd.DataFrame) -> pd.DataFrame:
    """|point − actual| with one row per (quarter, entity_id, segment) and one column per model; NaN where no forecast."""
    errors = forecasts.assign(abs_error=(forecasts["point"] - forecasts["actual"]).abs())
    return errors.pivot(index=ROW, columns="model", values="abs_error")


def row_scales(forecasts: pd.DataFrame) -> pd.Series:
    """Each row's series scale, indexed like ``absolute_errors`` (NaN for tables written before ``scale`` existed)."""
    return forecasts.assign(scale=series_scale(forecasts)).groupby(ROW)["scale"].first()


def best_challenger(forecasts: pd.DataFrame) -> str | None:
    """The challenger with the lowest MAE over all its forecasts (None when no challenger forecast anything)."""
    answered = forecasts[(forecasts["model"] != POLICY_MODEL) & forecasts["point"].notna()]
    if answered.empty:
        return None
    mae = (answered["point"] - answered["actual"]).abs().groupby(answered["model"]).mean()
    return str(mae.idxmin())


def paired(errors: pd.DataFrame, model: str, reference: str) -> pd.DataFrame:
    """Columns ``model`` and ``reference`` of the two models' errors, on the rows where both forecast."""
    missing = pd.Series(np.nan, index=errors.index)
    both = pd.DataFrame({"model": errors.get(model, missing), "reference": errors.get(reference, missing)})
    return both.dropna()


def relative_mae(errors: pd.DataFrame, model: str, reference: str = PERSISTENCE) -> float:
    both = paired(errors, model, reference)
    return _ratio(both["model"].mean(), both["reference"].mean()) if len(both) else math.nan


def mase(errors: pd.DataFrame, scales: pd.Series, model: str) -> float:
    """Mean of |error| / series scale over the model's forecasts (NaN if any of them lacks a scale)."""
    error = errors[model].dropna() if model in errors else pd.Series(dtype=float)
    return float((error / scales.reindex(error.index)).mean(skipna=False)) if len(error) else math.nan


def gmrae(errors: pd.DataFrame, model: str, reference: str = PERSISTENCE) -> float:
    """Geometric mean of |error| / |reference's error|, both floored at ERROR_FLOOR so an exact forecast gives neither 0 nor ∞."""
    both = paired(errors, model, reference).clip(lower=ERROR_FLOOR)
    return float(np.exp(np.log(both["model"] / both["reference"]).mean())) if len(both) else math.nan


def share_beating(errors: pd.DataFrame, model: str, reference: str) -> float:
    """Share of series whose MAE over the evaluated quarters is strictly below the reference's on that series."""
    per_series = paired(errors, model, reference).groupby(level=SERIES).mean()
    return float((per_series["model"] < per_series["reference"]).mean()) if len(per_series) else math.nan


def diebold_mariano(errors: pd.DataFrame, model: str, reference: str) -> tuple[float, float]:
    """Diebold–Mariano test of equal absolute-error loss, one-step horizon, Harvey–Leybourne–Newbold corrected.

    The loss differential |e_model| − |e_reference| is averaged over the series of each quarter, giving
    one value per quarter (the cross-section is not independent: one macro shock moves every series).
    Positive statistic: the model's loss is larger. The p-value is two-sided, from Student t with
    quarters − 1 degrees of freedom. NaN with fewer than two quarters or a constant differential.
    """
    both = paired(errors, model, reference)
    differential = (both["model"] - both["reference"]).groupby(level="quarter").mean().to_numpy(float)
    quarters = len(differential)
    if quarters < 2 or np.allclose(differential, differential.mean(), rtol=0, atol=1e-12):
        return math.nan, math.nan
    horizon = 1
    mean = differential.mean()
    autocovariance_0 = ((differential - mean) ** 2).mean()  # at horizon 1 no higher lags enter the long-run variance
    dm = mean / math.sqrt(autocovariance_0 / quarters)
    statistic = dm * math.sqrt((quarters + 1 - 2 * horizon + horizon * (horizon - 1) / quarters) / quarters)
    return float(statistic), float(2 * stats.t.sf(abs(statistic), quarters - 1))


def model_skill(errors: pd.DataFrame, scales: pd.Series, model: str, best: str | None) -> dict:
    """The skill figures of one model; the head-to-head ones only for the policy (NaN for the others)."""
    figures = {"rel_mae": relative_mae(errors, model), "mase": mase(errors, scales, model), "gmrae": gmrae(errors, model),
               "share_beating_best": math.nan, "dm_stat": math.nan, "dm_pvalue": math.nan, "best_challenger": None}
    if model == POLICY_MODEL and best is not None:
        dm_stat, dm_pvalue = diebold_mariano(errors, model, best)
        figures.update(share_beating_best=share_beating(errors, model, best), dm_stat=dm_stat, dm_pvalue=dm_pvalue,
                       best_challenger=best)
    return figures


def skill_table(forecasts: pd.DataFrame, by: list[str] | None = None, best: str | None = None) -> pd.DataFrame:
    """One row of skill figures per model (and value of the ``by`` columns).

    ``best`` is the challenger the policy is compared with, by default the best over ``forecasts``;
    pass the overall best to compare per segment against the same challenger.
    """
    best = best or best_challenger(forecasts)
    groups = forecasts.groupby(by, sort=True) if by else [((), forecasts)]
    rows = []
    for key, group in groups:
        errors, scales = absolute_errors(group), row_scales(group)
        labels = dict(zip(by or [], key if isinstance(key, tuple) else (key,), strict=True))
        rows += [{"model": model, **labels, **model_skill(errors, scales, model, best)} for model in sorted(group["model"].unique())]
    return pd.DataFrame(rows, columns=["model", *(by or []), *SKILL_COLUMNS])


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 else math.nan


class Target(NamedTuple):
    name: str
    value: float
    goal: str
    passed: bool
    note: str = ""


COVERAGE_GOAL = (0.75, 0.85)
DIRECTION_GOAL = 0.60


def targets(overall: pd.DataFrame) -> list[Target]:
    """The walk-forward's targets, judged on an overall table (``Report.overall`` or metrics.csv's overall rows)."""
    table = overall.set_index("model")
    policy = table.loc[POLICY_MODEL] if POLICY_MODEL in table.index else pd.Series(dtype=object)
    challengers = table.drop(index=POLICY_MODEL, errors="ignore")["mae"].dropna()
    best = challengers.idxmin() if len(challengers) else None
    best_mae = float(challengers.min()) if best else math.nan
    mae, coverage = _figure(policy, "mae"), _figure(policy, "coverage_10_90_cal")
    direction = _figure(policy, "directional_accuracy")
    low, high = COVERAGE_GOAL
    return [
        Target("policy MAE ≤ best challenger MAE", mae, f"≤ {best_mae:.4f} pp ({best})", bool(mae <= best_mae)),
        Target("policy calibrated 10–90 coverage", coverage, f"{low:.2f}–{high:.2f}", bool(low <= coverage <= high),
               f"uncalibrated {_figure(policy, 'coverage_10_90'):.4f}"),
        Target("policy directional accuracy", direction, f"≥ {DIRECTION_GOAL:.2f}", bool(direction >= DIRECTION_GOAL)),
    ]


def target_lines(overall: pd.DataFrame) -> list[str]:
    """One PASS/MISS line per target (a NaN figure misses)."""
    return [f"{'PASS' if t.passed else 'MISS'}  {t.name}: {t.value:.4f} against {t.goal}" + (f" ({t.note})" if t.note else "")
            for t in targets(overall)]


POLICY_FIGURES = ("mae", "rel_mae", "mase", "gmrae", "share_beating_best", "dm_stat", "dm_pvalue", "directional_accuracy",
                  "coverage_10_90", "coverage_10_90_cal")


def policy_figures(overall: pd.DataFrame) -> dict[str, float | str]:
    """The policy's skill and coverage figures from an overall table, keyed ``policy_<figure>``, with its best challenger's MAE."""
    table = overall.set_index("model")
    policy = table.loc[POLICY_MODEL] if POLICY_MODEL in table.index else pd.Series(dtype=object)
    best = policy.get("best_challenger")
    best = best if isinstance(best, str) else ""
    return {**{f"policy_{name}": _figure(policy, name) for name in POLICY_FIGURES}, "best_challenger": best,
            "best_challenger_mae": _figure(table.loc[best], "mae") if best in table.index else math.nan}


def _figure(row: pd.Series, column: str) -> float:
    value = row.get(column, math.nan)
    return float(value) if pd.notna(value) else math.nan
