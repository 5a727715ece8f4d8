"""Metrics against hand-computed cases."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from cecl_pipeline.forecast.metrics import (
    crps_from_samples,
    crps_gaussian,
    forecast_rows,
    metrics_table,
    pinball_loss,
    stress_table,
    summarise,
)


def forecasts(**columns) -> pd.DataFrame:
    base = {"quarter": "2019Q1", "entity_id": "e", "segment": "s", "model": "m"}
    return pd.DataFrame({**base, **columns})


HAND = forecasts(
    actual=[1.0, 1.0, 3.0],
    point=[1.5, 1.3, np.nan],  # errors +0.5, +0.3; the third gave no forecast
    last=[1.2, 1.8, 2.5],  # changes: forecast +0.3 vs actual −0.2 (miss); −0.5 vs −0.8 (hit)
    q10=[1.0, 1.1, np.nan],
    q50=[1.5, 1.3, np.nan],
    q90=[2.0, 1.6, np.nan],  # actual inside [1.0, 2.0]; outside [1.1, 1.6]
    crps=[0.3, 0.2, np.nan],
)


def test_point_direction_interval_and_probabilistic_metrics_by_hand():
    m = summarise(HAND)
    assert (m["rows"], m["n"]) == (3, 2)
    assert m["mae"] == pytest.approx(0.4)
    assert m["rmse"] == pytest.approx(math.sqrt((0.25 + 0.09) / 2))
    assert m["bias"] == pytest.approx(0.4)
    assert m["directional_accuracy"] == pytest.approx(0.5)
    assert m["coverage_10_90"] == pytest.approx(0.5)
    # row 1: 0, 0.25, 0.1 → 0.35/3; row 2: 0.09, 0.15, 0.06 → 0.30/3
    assert m["pinball"] == pytest.approx((0.35 / 3 + 0.30 / 3) / 2)
    assert m["crps"] == pytest.approx(0.25)


def test_point_only_models_have_no_interval_metrics():
    m = summarise(forecasts(actual=[1.0], point=[2.0], last=[1.5], q10=[np.nan], q50=[np.nan], q90=[np.nan], crps=[1.0]))
    assert m["mae"] == 1.0 and math.isnan(m["coverage_10_90"]) and math.isnan(m["pinball"])


def test_pinball_loss_weights_under_and_over_forecasts_by_tau():
    assert pinball_loss(np.array([2.0]), np.array([1.0]), 0.9)[0] == pytest.approx(0.9)  # under by 1
    assert pinball_loss(np.array([1.0]), np.array([2.0]), 0.9)[0] == pytest.approx(0.1)  # over by 1


def test_crps_from_samples_by_hand():
    samples = np.array([[1.0, 2.0, np.nan], [2.0, np.nan, np.nan], [np.nan] * 3])
    crps = crps_from_samples(samples, np.array([1.5, 1.0, 1.0]))
    # E|X−y| = 0.5; pairs |0|,|1|,|1|,|0| → E|X−X'| = 0.5; 0.5 − 0.25
    assert crps[0] == pytest.approx(0.25)
    assert crps[1] == pytest.approx(1.0)  # one sample: its absolute error
    assert math.isnan(crps[2])


def test_gaussian_crps_matches_the_integral_of_its_definition():
    mean, std, y = 1.2, 0.4, 2.0
    integral = sum(integrate.quad(lambda x: (stats.norm.cdf(x, mean, std) - (x >= y)) ** 2, a, b)[0] for a, b in ((-20, y), (y, 20)))
    assert crps_gaussian(np.array([mean]), np.array([std]), np.array([y]))[0] == pytest.approx(integral, rel=1e-6)
    assert crps_gaussian(np.array([mean]), np.array([0.0]), np.array([y]))[0] == pytest.approx(0.8)


def test_tables_group_by_model_and_key_and_stress_windows_only_where_in_range():
    frame = pd.concat([HAND.assign(quarter="2009Q2"), HAND.assign(quarter="2012Q1", model="other")], ignore_index=True)
    by_quarter = metrics_table(frame, ["quarter"])
    assert by_quarter[["model", "quarter"]].values.tolist() == [["m", "2009Q2"], ["other", "2012Q1"]]
    stress = stress_table(frame)
    assert stress["window"].tolist() == ["GFC 2008Q1–2010Q4"] and stress["model"].tolist() == ["m"]
    assert stress_table(frame[frame["quarter"] == "2012Q1"]).empty


def test_a_forecast_of_no_change_calls_no_direction():
    rows = forecasts(actual=[1.1, 0.9, 1.2], point=[1.0, 0.8, 1.3], last=[1.0, 1.0, 1.0], q10=np.nan, q50=np.nan, q90=np.nan, crps=0.0)
    # row 1 calls nothing (left out); row 2 down/down hit; row 3 up/up hit
    assert summarise(rows)["directional_accuracy"] == pytest.approx(1.0)
    persistence = rows.assign(point=rows["last"])
    assert math.isnan(summarise(persistence)["directional_accuracy"])


def test_forecast_rows_carry_the_series_scale_of_their_window():
    examples = pd.DataFrame({"prompt_id": ["p0", "p1"], "entity_id": ["e0", "e1"], "segment": ["card", "cre"], "target": [1.0, 2.0],
                             "history": [np.array([1.0, 1.2, 1.1, 1.4]), np.full(12, 0.5)]})
    rows = forecast_rows(examples, "2019Q1", "m", [1.0, 2.0], (np.nan, np.nan, np.nan), [0.0, 0.0])
    # changes 0.2, 0.1, 0.3 → 0.2; a flat series gets the 0.01 pp floor
    assert rows["scale"].tolist() == pytest.approx([0.2, 0.01])
    assert rows["last"].tolist() == [1.4, 0.5]
