"""Baselines: known-answer fits, the fallback on fits that cannot be made, and the look-ahead guard."""

import numpy as np
import pandas as pd
import pytest

from cecl_pipeline.challengers.registry import CHALLENGERS
from cecl_pipeline.forecast.baselines import Z90, baseline_forecasts
from cecl_pipeline.panel.windows import LookaheadError
from cecl_pipeline.quarters import quarter_range

HISTORY_QUARTERS = quarter_range("2017Q1", "2019Q4")


def examples(*histories, targets=None, history_quarters=HISTORY_QUARTERS) -> pd.DataFrame:
    n = len(histories)
    return pd.DataFrame({"prompt_id": [f"p{i}" for i in range(n)], "entity_id": "bank", "segment": [f"s{i}" for i in range(n)],
                         "history_quarters": [history_quarters] * n, "history": [np.asarray(h, float) for h in histories],
                         "target": targets if targets is not None else [1.0] * n})


def ar_series(c=0.5, phi=0.8, y0=1.0, n=12) -> np.ndarray:
    y = [y0]
    for _ in range(n - 1):
        y.append(c + phi * y[-1])
    return np.array(y)


def by_model(frame: pd.DataFrame) -> dict:
    return {row.model: row for row in frame.itertuples()}


def test_persistence_mean_and_an_exact_ar1_process():
    y = ar_series()
    rows = by_model(baseline_forecasts(examples(y, targets=[2.0]), "2020Q1"))
    assert rows["persistence"].point == y[-1]
    assert rows["mean_4q"].point == pytest.approx(y[-4:].mean())
    assert rows["ar1"].point == pytest.approx(0.5 + 0.8 * y[-1], abs=1e-8)
    assert all(row.last == y[-1] and row.actual == 2.0 and row.quarter == "2020Q1" for row in rows.values())


def test_fitted_models_give_ordered_gaussian_intervals_and_point_models_none():
    y = 1.5 + np.cumsum(np.random.default_rng(1).normal(0, 0.2, 12))
    rows = by_model(baseline_forecasts(examples(y), "2020Q1"))
    assert set(rows) == set(CHALLENGERS)
    for name in ("ar1", "arima_110", "auto_ets", "auto_arima", "theta", "comb"):
        row = rows[name]
        assert row.q10 < row.q50 == row.point < row.q90 and not row.fallback
        assert row.q90 - row.point == pytest.approx(row.point - row.q10) and row.q90 - row.point > 0
    for name in ("persistence", "mean_4q", "naive_comb"):
        assert np.isnan(rows[name].q10) and rows[name].crps == pytest.approx(abs(rows[name].point - 1.0))
    assert Z90 == pytest.approx(1.2815515655)


def test_the_combination_is_the_equal_weight_mean_of_ets_arima_and_theta_and_of_their_bands():
    histories = [1.5 + np.cumsum(np.random.default_rng(seed).normal(0, 0.2, 12)) for seed in range(3)]
    frame = baseline_forecasts(examples(*histories), "2020Q1", ("auto_ets", "auto_arima", "theta", "comb"))
    parts = frame[frame.model != "comb"].groupby("prompt_id")[["point", "q10", "q90"]].mean()
    comb = frame[frame.model == "comb"].set_index("prompt_id")
    assert np.allclose(comb[["point", "q10", "q90"]], parts.loc[comb.index]) and not comb["fallback"].any()


def test_naive_comb_is_the_mean_of_persistence_and_the_combination_without_a_band():
    histories = [1.5 + np.cumsum(np.random.default_rng(seed).normal(0, 0.2, 12)) for seed in range(3)]
    frame = baseline_forecasts(examples(*histories), "2020Q1", ("naive_comb", "comb")).set_index(["model", "prompt_id"])
    last = np.array([h[-1] for h in histories])
    assert np.allclose(frame.loc["naive_comb", "point"], (last + frame.loc["comb", "point"].to_numpy()) / 2, rtol=0, atol=1e-12)
    assert frame.loc["naive_comb", "q10"].isna().all() and not frame.loc["naive_comb", "fallback"].any()


def test_a_fit_that_cannot_be_made_falls_back_to_persistence_and_says_so():
    rows = by_model(baseline_forecasts(examples(np.full(12, 1.5)), "2020Q1"))
    garch = rows["ar1_garch11"]  # a constant series has no variance to model
    assert garch.fallback and garch.point == 1.5 and np.isnan(garch.q10)
    assert not rows["persistence"].fallback


def test_history_dated_at_or_after_the_target_quarter_is_refused():
    late = quarter_range("2017Q2", "2020Q1")
    with pytest.raises(LookaheadError, match="2020Q1"):
        baseline_forecasts(examples(ar_series(), history_quarters=late), "2020Q1")


def test_unknown_baselines_are_refused_by_name():
    with pytest.raises(ValueError, match="prophet"):
        baseline_forecasts(examples(ar_series()), "2020Q1", ("persistence", "prophet"))
