"""The WARM allowance arithmetic and reversion, against hand-computed examples."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cecl_pipeline.forecast.allowance import average_balances, check_weights, life_quarters, lifetime_loss, probability_weighted
from cecl_pipeline.forecast.reversion import long_run_mean, reversion_path


def test_a_four_quarter_pool_runs_off_in_a_straight_line_and_loses_rate_over_400_of_each_average_balance():
    balances = average_balances([1000.0], [4.0])
    assert balances.tolist() == [[875.0, 625.0, 375.0, 125.0]]  # the balance at each quarter's midpoint
    assert lifetime_loss([[2.0, 2.0, 2.0, 2.0]], [1000.0], [4.0]) == pytest.approx([2000 * 0.005])  # 2% a year = 0.5% a quarter


def test_a_fractional_life_counts_only_the_part_of_its_last_quarter_inside_it():
    # L = 2.5: ∫(1 − t/2.5) over [0,1] = 0.8, [1,2] = 0.4, [2,2.5] = 0.5 − (6.25 − 4)/5 = 0.05; together L/2 = 1.25
    assert average_balances([1000.0], [2.5]) == pytest.approx(np.array([[800.0, 400.0, 50.0]]))
    assert life_quarters([2.5, 1.0]) == 3
    assert lifetime_loss([[4.0, 4.0, 4.0]], [1000.0], [2.5]) == pytest.approx([1250 * 0.01])
    shorter = lifetime_loss([[4.0, 4.0, 4.0], [4.0, 8.0, 8.0]], [1000.0, 1000.0], [2.5, 1.0])
    assert shorter == pytest.approx([12.5, 500 * 0.01])  # the one-quarter pool never sees the 8% quarters


def test_prepayment_scales_each_quarter_by_the_survival_at_its_midpoint():
    annual = 1 - 0.9**4  # 10% of the balance prepays each quarter
    balances = average_balances([1000.0], [2.0], annual)
    assert balances == pytest.approx(np.array([[750 * 0.9**0.5, 250 * 0.9**1.5]]))
    assert lifetime_loss([[4.0, 6.0]], [1000.0], [2.0], annual) == pytest.approx([750 * 0.9**0.5 * 0.01 + 250 * 0.9**1.5 * 0.015])


@given(cost=st.floats(0, 1e9), life=st.floats(0.01, 160), rate=st.floats(-1, 40))
def test_a_flat_rate_loses_rate_over_400_of_the_cost_times_half_the_life(cost, life, rate):
    path = np.full((1, life_quarters([life])), rate)
    assert lifetime_loss(path, [cost], [life])[0] == pytest.approx(rate / 400 * cost * life / 2, rel=1e-9, abs=1e-6)


def test_bad_pools_and_short_paths_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="longest remaining life needs 3"):
        lifetime_loss([[1.0, 1.0]], [100.0], [2.5])
    with pytest.raises(ValueError, match="amortized cost"):
        average_balances([-1.0], [4.0])
    with pytest.raises(ValueError, match="remaining life"):
        average_balances([100.0], [0.0])
    with pytest.raises(ValueError, match="prepayment"):
        average_balances([100.0], [4.0], 1.0)
    with pytest.raises(ValueError, match="2 rate path"):
        lifetime_loss([[1.0], [1.0]], [100.0], [1.0])


def test_scenarios_are_weighted_by_probabilities_that_must_sum_to_one_and_name_each_scenario():
    by_scenario = {"baseline": np.array([10.0, 1.0]), "severely_adverse": np.array([30.0, 5.0])}
    assert probability_weighted(by_scenario, {"baseline": 0.6, "severely_adverse": 0.4}) == pytest.approx([18.0, 2.6])
    with pytest.raises(ValueError, match=r"sum to 1, they sum to 0\.9"):
        check_weights({"baseline": 0.5, "severely_adverse": 0.4}, by_scenario)
    with pytest.raises(ValueError, match=r"no weight for \['severely_adverse'\]"):
        check_weights({"baseline": 1.0}, by_scenario)
    with pytest.raises(ValueError, match="unknown scenarios \\['adverse'\\]"):
        check_weights({"baseline": 0.5, "severely_adverse": 0.25, "adverse": 0.25}, by_scenario)
    with pytest.raises(ValueError, match="≥ 0"):
        check_weights({"baseline": 1.5, "severely_adverse": -0.5}, by_scenario)


def test_reversion_runs_a_straight_line_from_the_last_forecast_to_the_mean_in_r_quarters():
    forecast, mean = np.array([[2.0, 3.0]]), np.array([1.0])
    assert reversion_path(forecast, mean, 4, 8).tolist() == [[2.0, 3.0, 2.5, 2.0, 1.5, 1.0, 1.0, 1.0]]
    assert reversion_path(forecast, mean, 0, 4).tolist() == [[2.0, 3.0, 1.0, 1.0]]  # immediate
    assert reversion_path(forecast, mean, 4, 1).tolist() == [[2.0]]  # a life shorter than the horizon


def test_the_long_run_mean_is_the_mean_of_the_history_it_is_given_and_bad_shapes_are_refused():
    assert long_run_mean([[1.0, 2.0, 3.0], [0.5, 0.5, 2.0]]).tolist() == [2.0, 1.0]
    with pytest.raises(ValueError, match="horizon must be 1–12"):
        reversion_path(np.ones((1, 13)), [1.0], 4, 20)
    with pytest.raises(ValueError, match="2 forecast path"):
        reversion_path(np.ones((2, 4)), [1.0], 4, 8)
