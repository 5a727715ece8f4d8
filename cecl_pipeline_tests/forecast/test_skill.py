"""Skill figures and targets against hand-computed cases."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cecl_pipeline.forecast.skill import (
    absolute_errors,
    best_challenger,
    diebold_mariano,
    policy_figures,
    skill_table,
    target_lines,
    targets,
)

SERIES = {"A": ("bank1", "card", 0.1), "B": ("bank2", "mortgage", 0.2)}  # entity, segment, scale
# Absolute errors per (quarter, series); the signs alternate so nothing depends on them.
ERRORS = {
    "persistence": {("2019Q1", "A"): 0.2, ("2019Q1", "B"): 0.4, ("2019Q2", "A"): 0.1, ("2019Q2", "B"): 0.3},
    "comb": {("2019Q1", "A"): 0.1, ("2019Q1", "B"): 0.2, ("2019Q2", "A"): 0.1, ("2019Q2", "B"): 0.2},
    "ar1": {("2019Q1", "A"): 0.3, ("2019Q1", "B"): 0.3, ("2019Q2", "A"): 0.3, ("2019Q2", "B"): 0.3},
    "grpo_policy": {("2019Q1", "A"): 0.05, ("2019Q1", "B"): 0.3, ("2019Q2", "A"): 0.0, ("2019Q2", "B"): math.nan},  # B at Q2 did not parse
}


def hand_forecasts(errors=ERRORS) -> pd.DataFrame:
    rows = []
    for model, cells in errors.items():
        for k, ((quarter, name), error) in enumerate(cells.items()):
            entity, segment, scale = SERIES[name]
            actual = 1.0 + k
            rows.append({"quarter": quarter, "entity_id": entity, "segment": segment, "model": model, "actual": actual,
                         "last": actual, "scale": scale, "point": actual + (error if k % 2 else -error)})
    return pd.DataFrame(rows)


def skill_of(model, table):
    return table.set_index("model").loc[model]


def test_best_challenger_is_the_lowest_mae_model_other_than_the_policy_whatever_its_name():
    assert best_challenger(hand_forecasts()) == "comb"  # MAE 0.15 < persistence 0.25 < ar1 0.3; the policy's 0.117 does not count
    assert best_challenger(hand_forecasts({"grpo_policy": ERRORS["grpo_policy"]})) is None


def test_relative_scaled_and_geometric_errors_of_the_policy_by_hand():
    policy = skill_of("grpo_policy", skill_table(hand_forecasts()))
    # the three rows the policy answered: policy 0.05 + 0.3 + 0, persistence 0.2 + 0.4 + 0.1
    assert policy["rel_mae"] == pytest.approx(0.35 / 0.7)
    # |e|/scale: 0.05/0.1, 0.3/0.2, 0/0.1
    assert policy["mase"] == pytest.approx((0.5 + 1.5 + 0.0) / 3)
    # ratios 0.25, 0.75 and 0.005/0.1: the exact forecast is floored at half the rounding unit, not 0
    assert policy["gmrae"] == pytest.approx((0.25 * 0.75 * 0.05) ** (1 / 3))


def test_persistence_is_its_own_unit_and_challengers_get_no_head_to_head():
    table = skill_table(hand_forecasts())
    persistence = skill_of("persistence", table)
    assert persistence["rel_mae"] == pytest.approx(1.0) and persistence["gmrae"] == pytest.approx(1.0)
    ar1 = skill_of("ar1", table)
    assert ar1["rel_mae"] == pytest.approx(1.2 / 1.0)
    assert math.isnan(ar1["share_beating_best"]) and math.isnan(ar1["dm_pvalue"]) and pd.isna(ar1["best_challenger"])


def test_share_of_series_where_the_policy_beats_the_best_challenger():
    # series A: policy (0.05 + 0)/2 < comb 0.1; series B, only Q1 paired: policy 0.3 > comb 0.2
    policy = skill_of("grpo_policy", skill_table(hand_forecasts()))
    assert policy["best_challenger"] == "comb" and policy["share_beating_best"] == pytest.approx(0.5)


def test_diebold_mariano_on_the_quarterly_mean_loss_differential_by_hand():
    # differentials: Q1 (0.05 − 0.1, 0.3 − 0.2) → 0.025; Q2 (0 − 0.1) → −0.1 (B not paired)
    # mean −0.0375, sample sd 0.125/√2, so t = −0.0375 / 0.0625 = −0.6 on 1 df (Cauchy: p = 1 − 2·atan(0.6)/π)
    policy = skill_of("grpo_policy", skill_table(hand_forecasts()))
    assert policy["dm_stat"] == pytest.approx(-0.6)
    assert policy["dm_pvalue"] == pytest.approx(1 - 2 * math.atan(0.6) / math.pi)


def test_diebold_mariano_with_the_small_sample_correction_is_a_one_sample_t_test_at_horizon_one():
    rng = np.random.default_rng(3)
    quarters = [f"20{10 + k // 4}Q{k % 4 + 1}" for k in range(9)]
    frames = [pd.DataFrame({"quarter": q, "entity_id": [f"e{i}" for i in range(5)], "segment": "card", "model": model,
                            "actual": 0.0, "last": 0.0, "scale": 0.1, "point": rng.normal(shift, 0.3, 5)})
              for q in quarters for model, shift in (("grpo_policy", 0.0), ("comb", 0.1))]
    forecasts = pd.concat(frames, ignore_index=True)
    statistic, pvalue = diebold_mariano(absolute_errors(forecasts), "grpo_policy", "comb")
    differential = forecasts.assign(loss=forecasts["point"].abs()).pivot_table(index="quarter", columns="model", values="loss")
    expected = stats.ttest_1samp(differential["grpo_policy"] - differential["comb"], 0.0)
    assert statistic == pytest.approx(expected.statistic) and pvalue == pytest.approx(expected.pvalue)


def test_diebold_mariano_needs_two_quarters_and_some_variance():
    one_quarter = hand_forecasts()
    one_quarter = one_quarter[one_quarter["quarter"] == "2019Q1"]
    assert all(math.isnan(x) for x in diebold_mariano(absolute_errors(one_quarter), "grpo_policy", "comb"))
    constant = {"comb": ERRORS["comb"], "grpo_policy": {cell: error + 0.05 for cell, error in ERRORS["comb"].items()}}
    assert all(math.isnan(x) for x in diebold_mariano(absolute_errors(hand_forecasts(constant)), "grpo_policy", "comb"))


def test_without_persistence_or_a_scale_the_figures_that_need_them_are_nan():
    no_persistence = skill_of("grpo_policy", skill_table(hand_forecasts({m: e for m, e in ERRORS.items() if m != "persistence"})))
    assert math.isnan(no_persistence["rel_mae"]) and math.isnan(no_persistence["gmrae"])
    assert no_persistence["share_beating_best"] == pytest.approx(0.5)
    old = skill_of("grpo_policy", skill_table(hand_forecasts().drop(columns="scale")))  # a table written before `scale`
    assert math.isnan(old["mase"]) and old["rel_mae"] == pytest.approx(0.5)


def test_by_segment_the_policy_is_compared_with_the_challenger_it_is_given():
    table = skill_table(hand_forecasts(), ["segment"], best="ar1").set_index(["model", "segment"])
    card = table.loc[("grpo_policy", "card")]
    assert card["best_challenger"] == "ar1" and card["share_beating_best"] == pytest.approx(1.0)
    assert card["rel_mae"] == pytest.approx(0.05 / 0.3)  # (0.05 + 0) / (0.2 + 0.1)


def overall(policy_mae=0.10, best_mae=0.12, coverage=0.80, direction=0.65):
    return pd.DataFrame({"model": ["grpo_policy", "comb", "persistence"], "mae": [policy_mae, best_mae, 0.2],
                         "directional_accuracy": [direction, 0.5, np.nan], "coverage_10_90": [0.6, np.nan, np.nan],
                         "coverage_10_90_cal": [coverage, np.nan, np.nan], "rel_mae": [0.5, 0.6, 1.0],
                         "best_challenger": ["comb", np.nan, np.nan]})


def test_targets_pass_and_miss_at_their_bounds():
    assert [t.passed for t in targets(overall())] == [True, True, True]
    assert [t.passed for t in targets(overall(policy_mae=0.12, coverage=0.75, direction=0.60))] == [True, True, True]
    assert [t.passed for t in targets(overall(policy_mae=0.121, coverage=0.851, direction=0.59))] == [False, False, False]
    assert [t.passed for t in targets(overall(coverage=0.74))] == [True, False, True]
    assert [t.passed for t in targets(overall(coverage=np.nan))] == [True, False, True]  # no calibrated row: not a pass


def test_target_lines_name_the_challenger_and_show_coverage_before_calibration():
    lines = target_lines(overall(policy_mae=0.13))
    assert lines[0].startswith("MISS  policy MAE ≤ best challenger MAE: 0.1300") and "(comb)" in lines[0]
    assert lines[1].startswith("PASS") and "uncalibrated 0.6000" in lines[1]
    assert all(line.startswith("MISS") for line in target_lines(overall().iloc[1:]))  # no policy: every target misses


def test_policy_figures_are_plain_floats_and_strings():
    figures = policy_figures(overall())
    assert figures["best_challenger"] == "comb" and figures["best_challenger_mae"] == pytest.approx(0.12)
    assert figures["policy_rel_mae"] == pytest.approx(0.5) and figures["policy_coverage_10_90"] == pytest.approx(0.6)
    assert all(isinstance(v, float) for k, v in figures.items() if k != "best_challenger")
