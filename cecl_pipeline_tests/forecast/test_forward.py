"""The forward forecast's pieces on hand-made inputs: windows without a target, quantiles over paths, recursive challenger
paths, the guards, and scoring a forecast as written once its actuals land."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from cecl_pipeline.envs.registry import get_env
from cecl_pipeline.forecast.forward import UNCONDITIONAL, challenger_rows, check_horizon, forecast_forward, policy_rows, scenario_conditions
from cecl_pipeline.forecast.forward_scores import forward_metrics, score_forward
from cecl_pipeline.forecast.policy_samples import SampleSettings
from cecl_pipeline.forecast.walkforward import Checkpoint
from cecl_pipeline.panel.windows import LookaheadError, forward_windows
from cecl_pipeline.quarters import quarter_range


def panel(values: dict[tuple[str, str], list[float]], last: str = "2019Q4") -> pd.DataFrame:
    rows = []
    for (entity, segment), series in values.items():
        quarters = quarter_range("2000Q1", last)[-len(series):]
        rows += [{"entity_id": entity, "segment": segment, "quarter": q, "nco_rate": v} for q, v in zip(quarters, series, strict=True)]
    return pd.DataFrame(rows)


def test_forward_windows_end_at_the_origin_and_leave_out_series_with_gaps():
    history = panel({("b", "cards"): list(np.arange(12.0)), ("a", "cards"): list(np.arange(12.0) + 1)})
    gappy = panel({("c", "cards"): list(np.arange(12.0))}).iloc[[0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11]]
    windows = forward_windows(pd.concat([history, gappy]), "2019Q4")
    assert windows.target_quarter == "2020Q1" and windows.history_quarters[-1] == "2019Q4"
    assert list(windows.keys["entity_id"]) == ["a", "b"] and np.isnan(windows.target).all()
    assert windows.history[0, -1] == 12.0 and list(windows.gaps["entity_id"]) == ["c"]
    with pytest.raises(LookaheadError, match="2020Q1"):
        forward_windows(panel({("a", "cards"): list(np.arange(13.0))}, last="2020Q1"), "2019Q4")


def test_policy_rows_pool_every_parsed_path_and_take_the_median_of_member_medians():
    windows = forward_windows(panel({("a", "cards"): [1.0] * 12}), "2019Q4")
    values = [1.0, 2.0, 3.0, np.nan, 10.0, 11.0]  # member 0: 1, 2, 3, nothing parsed; member 1: 10, 11
    paths = pd.DataFrame({"entity_id": "a", "segment": "cards", "horizon": 1, "member": [0, 0, 0, 0, 1, 1], "value": values})
    (row,) = policy_rows(windows, paths, "2019Q4", 1).to_dict("records")
    assert row["point"] == pytest.approx(np.median([2.0, 10.5]))
    assert row["q50"] == pytest.approx(3.0) and row["q10"] == pytest.approx(np.quantile([1, 2, 3, 10, 11], 0.1))
    assert row["parse_rate"] == pytest.approx(5 / 6) and row["quarter"] == "2020Q1" and row["last"] == 1.0


def test_challenger_paths_feed_their_own_forecast_back():
    history = [float(v) for v in range(1, 13)]  # last four: 9, 10, 11, 12
    windows = forward_windows(panel({("a", "cards"): history}), "2019Q4")
    rows = challenger_rows(windows, ("persistence", "mean_4q"), "2019Q4", 3).set_index(["model", "horizon"])["point"]
    assert [rows["persistence", h] for h in (1, 2, 3)] == [12.0, 12.0, 12.0]
    first = (9 + 10 + 11 + 12) / 4
    second = (10 + 11 + 12 + first) / 4
    assert rows["mean_4q", 1] == pytest.approx(first) and rows["mean_4q", 2] == pytest.approx(second)
    assert rows["mean_4q", 3] == pytest.approx((11 + 12 + first + second) / 4)


def test_banded_challengers_give_their_band_at_the_first_quarter_only():
    windows = forward_windows(panel({("a", "cards"): [1.0, 1.2, 1.1, 1.4, 1.3, 1.5, 1.6, 1.4, 1.7, 1.8, 1.6, 1.9]}), "2019Q4")
    rows = challenger_rows(windows, ("auto_ets",), "2019Q4", 2).set_index("horizon")
    assert rows.loc[1, "q10"] < rows.loc[1, "point"] < rows.loc[1, "q90"]
    assert math.isnan(rows.loc[2, "q10"]) and math.isnan(rows.loc[2, "std"]) and np.isfinite(rows.loc[2, "point"])


def test_the_horizon_is_one_to_twelve_quarters():
    assert check_horizon(12) == 12
    for bad in (0, 13):
        with pytest.raises(ValueError, match="horizon must be 1–12"):
            check_horizon(bad)


def test_macro_rows_after_the_origin_are_refused_before_any_sampling(tmp_path):
    windows = forward_windows(panel({("a", "cards"): [1.0] * 12}), "2019Q4")
    macro = pd.DataFrame({"quarter": ["2019Q4", "2020Q1"], "unemployment_rate": [3.6, 4.0]})
    with pytest.raises(LookaheadError, match="the macro covariates holds data dated 2020Q1"):
        forecast_forward(windows, np.ones(1), [Checkpoint(tmp_path / "unused", "x")], get_env("nco_enhanced"), SampleSettings(), 2,
                         tmp_path / "f.parquet", tmp_path / "p.parquet", macro=macro)


def test_a_policy_trained_on_the_first_forecast_quarter_is_refused(tmp_path):
    windows = forward_windows(panel({("a", "cards"): [1.0] * 12}), "2019Q4")
    (tmp_path / "member-0").mkdir()
    (tmp_path / "member-0" / "conversion.json").write_text(json.dumps({"trained_through": "2020Q1"}))
    with pytest.raises(LookaheadError, match="trained on targets up to 2020Q1"):
        forecast_forward(windows, np.ones(1), [Checkpoint(tmp_path / "member-0", "x")], get_env("nco_adjust"), SampleSettings(), 2,
                         tmp_path / "f.parquet", tmp_path / "p.parquet")
    assert not (tmp_path / "f.parquet").exists()


def test_scores_use_the_forecast_as_written_and_only_quarters_that_landed():
    forecasts = pd.DataFrame({
        "origin": "2019Q4", "scenario": "unconditional", "quarter": ["2020Q1", "2020Q2", "2020Q1"], "horizon": [1, 2, 1], "entity_id": "a", "segment": "cards",
        "model": ["grpo_policy", "grpo_policy", "auto_ets"], "last": 1.0, "scale": 0.1, "point": [1.2, 1.5, 1.1],
        "q10": [1.0, 1.1, 0.9], "q50": [1.2, 1.5, 1.1], "q90": [1.4, 1.9, 1.3], "std": [np.nan, np.nan, 0.2],
    })
    actuals = pd.DataFrame({"entity_id": ["a"], "segment": ["cards"], "quarter": ["2020Q1"], "actual": [1.3]})
    paths = pd.DataFrame({"origin": "2019Q4", "scenario": "unconditional", "quarter": "2020Q1", "entity_id": "a", "segment": "cards",
                          "value": [1.0, 1.2, np.nan]})
    scored = score_forward(forecasts, actuals, paths).set_index("model")
    assert set(scored["quarter"]) == {"2020Q1"} and scored.loc["grpo_policy", "point"] == 1.2
    samples = np.array([1.0, 1.2])
    expected = np.abs(samples - 1.3).mean() - 0.5 * np.abs(samples[:, None] - samples[None, :]).mean()
    assert scored.loc["grpo_policy", "crps"] == pytest.approx(expected)
    assert scored.loc["auto_ets", "crps"] < abs(1.1 - 1.3)  # a Gaussian's CRPS is below its point's error here
    metrics = forward_metrics(scored.reset_index()).set_index("model")
    assert metrics.loc["grpo_policy", "mae"] == pytest.approx(0.1) and metrics.loc["grpo_policy", "directional_accuracy"] == 1.0


def scenario(first: str, quarters: int, unemployment: float) -> pd.DataFrame:
    return pd.DataFrame({"quarter": quarter_range(first, "2030Q4")[:quarters], "unemployment_rate": unemployment})


def test_each_scenario_conditions_the_horizon_on_its_own_path_after_the_realised_macro():
    realised = pd.DataFrame({"quarter": ["2019Q3", "2019Q4"], "unemployment_rate": [3.6, 3.5]})
    paths = {"baseline": scenario("2020Q1", 13, 3.7), "adverse": scenario("2020Q1", 13, 9.0)}
    tables = scenario_conditions(get_env("nco_enhanced"), "2019Q4", 2, realised, paths)
    assert tables["adverse"]["quarter"].tolist() == ["2019Q3", "2019Q4", "2020Q1", "2020Q2"]
    assert tables["adverse"]["unemployment_rate"].tolist() == [3.6, 3.5, 9.0, 9.0]
    assert tables["baseline"]["unemployment_rate"].tolist() == [3.6, 3.5, 3.7, 3.7]
    # an env that reads no macro data gives one forecast, whatever the scenarios
    assert list(scenario_conditions(get_env("nco_adjust"), "2019Q4", 2, None, paths)) == [UNCONDITIONAL]


@pytest.mark.parametrize(("paths", "message"), [
    ({}, "env nco_enhanced reads macro data: a forecast from 2019Q4 needs a scenario whose path starts 2020Q1"),
    ({"late": scenario("2020Q2", 13, 5.0)}, "scenario 'late' covers 2020Q2–2020Q4: a forecast from 2019Q4 over 3 quarters needs 2020Q1–2020Q3"),
    ({"short": scenario("2020Q1", 2, 5.0)}, "scenario 'short' covers 2020Q1–2020Q2: a forecast from 2019Q4 over 3 quarters needs 2020Q1–2020Q3"),
])
def test_a_scenario_that_does_not_cover_the_horizon_from_the_next_quarter_is_refused(paths, message):
    with pytest.raises(ValueError) as refused:
        scenario_conditions(get_env("nco_enhanced"), "2019Q4", 3, None, paths)
    assert message in str(refused.value)
