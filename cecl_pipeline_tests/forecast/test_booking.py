"""The allowance booked from a forward forecast and a portfolio, against hand-computed figures: reversion, WARM loss,
overlays and a roll-forward whose three effects add up to the change."""

import numpy as np
import pandas as pd
import pytest

from cecl_pipeline.forecast.booking import MissingForecastError, book

ORIGIN = "2024Q4"


def forecasts(rows: dict[tuple[str, str], tuple[list[float], float]], scenario: str = "unconditional") -> pd.DataFrame:
    """Policy rows for each series: its point per horizon and its long-run mean (plus a challenger row that must be ignored)."""
    frames = []
    for (entity, segment), (points, mean) in rows.items():
        for h, point in enumerate(points, 1):
            for model, value in (("grpo_policy", point), ("persistence", 99.0)):
                frames.append({"entity_id": entity, "segment": segment, "model": model, "horizon": h, "point": value, "long_run_mean": mean,
                               "scenario": scenario})
    return pd.DataFrame(frames)


def portfolio(rows: list[tuple[str, str, float, float, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["entity_id", "segment", "amortized_cost", "remaining_life_quarters", "prepayment_rate"])
    return frame.assign(source_file="portfolio.csv", source_row=np.arange(2, len(frame) + 2))


NO_OVERLAYS = pd.DataFrame({"segment": [], "adjustment_bp": [], "reason": [], "approver": []})


def test_a_pool_loses_its_forecast_then_the_straight_line_back_to_its_long_run_mean():
    # Forecast 4% then 8% for two quarters; reversion over 2 quarters to a mean of 2%: 5%, then 2% for the rest of the life.
    booked = book(ORIGIN, portfolio([("A", "cards", 1000.0, 5.0, 0.0)]), forecasts({("A", "cards"): ([4.0, 8.0], 2.0)}), NO_OVERLAYS, 2)
    rates = booked.paths["loss_rate"].tolist()
    assert rates == pytest.approx([4.0, 8.0, 5.0, 2.0, 2.0])
    balances = [900.0, 700.0, 500.0, 300.0, 100.0]  # 1000 running off over 5 quarters, at each quarter's midpoint
    expected = sum(r / 400 * b for r, b in zip(rates, balances, strict=True))
    assert booked.pools["model_allowance"].iloc[0] == pytest.approx(expected)
    assert booked.pools["loss_rate_pct"].iloc[0] == pytest.approx(expected / 10)
    immediate = book(ORIGIN, portfolio([("A", "cards", 1000.0, 5.0, 0.0)]), forecasts({("A", "cards"): ([4.0, 8.0], 2.0)}), NO_OVERLAYS, 0)
    assert immediate.paths["loss_rate"].tolist() == pytest.approx([4.0, 8.0, 2.0, 2.0, 2.0])


def test_overlays_are_basis_points_of_the_segments_cost_and_listed_apart():
    pools = portfolio([("A", "cards", 1000.0, 2.0, 0.0), ("B", "cards", 3000.0, 2.0, 0.0), ("A", "cre", 500.0, 2.0, 0.0)])
    rows = {("A", "cards"): ([2.0, 2.0], 2.0), ("B", "cards"): ([2.0, 2.0], 2.0), ("A", "cre"): ([1.0, 1.0], 1.0)}
    overlays = pd.DataFrame({"segment": ["cards", "cards"], "adjustment_bp": [25.0, -5.0], "reason": ["r1", "r2"], "approver": ["CRO", "CFO"]})
    booked = book(ORIGIN, pools, forecasts(rows), overlays, 4)
    assert booked.overlays["amount"].tolist() == pytest.approx([10.0, -2.0])  # 25 bp and −5 bp of 4,000
    table = booked.by_segment.set_index("segment")
    model_cards = 2 / 400 * (750 + 250 + 2250 + 750)  # 2% a year on both pools' midpoint balances over their two quarters
    assert table.loc["cards", "model_allowance"] == pytest.approx(model_cards)
    assert table.loc["cards", "allowance"] == pytest.approx(model_cards + 8.0)
    assert table.loc["total", "allowance"] == pytest.approx(model_cards + 8.0 + 1 / 400 * (375 + 125))


def test_the_roll_forward_splits_the_change_into_balance_forecast_and_overlay_effects_that_add_up():
    before = book("2024Q3", portfolio([("A", "cards", 1000.0, 4.0, 0.0), ("B", "cards", 500.0, 4.0, 0.0)]),
                  forecasts({("A", "cards"): ([2.0], 2.0), ("B", "cards"): ([2.0], 2.0)}), NO_OVERLAYS.iloc[:0], 0)
    overlays = pd.DataFrame({"segment": ["cards"], "adjustment_bp": [10.0], "reason": ["r"], "approver": ["CRO"]})
    now = book(ORIGIN, portfolio([("A", "cards", 2000.0, 4.0, 0.0), ("C", "cards", 100.0, 4.0, 0.0)]),
               forecasts({("A", "cards"): ([3.0], 3.0), ("C", "cards"): ([3.0], 3.0)}), overlays, 0, previous=(before.pools, before.overlays))
    total = now.roll_forward.set_index("segment").loc["total"]
    a_before, b_before = before.pools.set_index("entity_id")["model_allowance"].loc[["A", "B"]]
    a_now, c_now = now.pools.set_index("entity_id")["model_allowance"].loc[["A", "C"]]
    assert total["previous_allowance"] == pytest.approx(a_before + b_before)
    # A doubled at last quarter's 2% loss ratio; B left; C is new (all balance).
    assert total["balance_effect"] == pytest.approx((a_before * 2 - a_before) - b_before + c_now)
    assert total["forecast_effect"] == pytest.approx(a_now - a_before * 2)
    assert total["overlay_effect"] == pytest.approx(10 * 1e-4 * 2100)
    assert total["allowance"] == pytest.approx(now.by_segment.set_index("segment").loc["total", "allowance"])


def test_a_series_the_policy_could_not_answer_takes_the_fallback_challengers_whole_path_and_says_so():
    rows = forecasts({("A", "cards"): ([np.nan, 3.0], 2.0), ("B", "cards"): ([2.0, 2.0], 2.0)})
    rows.loc[rows["model"] == "persistence", "model"] = "naive_comb"
    booked = book(ORIGIN, portfolio([("A", "cards", 1000.0, 2.0, 0.0), ("B", "cards", 1000.0, 2.0, 0.0)]), rows, NO_OVERLAYS, 4)
    paths = booked.paths.set_index(["entity_id", "quarter_ahead"])["loss_rate"]
    assert [paths["A", 1], paths["A", 2], paths["B", 1]] == [99.0, 99.0, 2.0]
    assert booked.pools.set_index("entity_id")["forecast_source"].to_dict() == {
        "A": "naive_comb (the policy gave no parsed answer)", "B": "grpo_policy"}


def test_a_pool_without_a_forecast_is_refused_naming_its_row():
    pools = portfolio([("A", "cards", 1000.0, 4.0, 0.0), ("Z", "cards", 10.0, 4.0, 0.0)])
    with pytest.raises(MissingForecastError, match=r"portfolio\.csv: 1 pool\(s\) .*row 3 \(Z / cards\)"):
        book(ORIGIN, pools, forecasts({("A", "cards"): ([2.0], 2.0)}), NO_OVERLAYS, 4)


def test_scenarios_are_booked_each_and_weighted_by_probability():
    pools = portfolio([("A", "cards", 1000.0, 2.0, 0.0)])
    both = pd.concat([forecasts({("A", "cards"): ([2.0, 2.0], 2.0)}, "baseline"), forecasts({("A", "cards"): ([6.0, 10.0], 2.0)}, "adverse")])
    booked = book(ORIGIN, pools, both, NO_OVERLAYS, 0, weights={"baseline": 0.75, "adverse": 0.25})
    baseline, adverse = 2 / 400 * 750 + 2 / 400 * 250, 6 / 400 * 750 + 10 / 400 * 250  # two quarters of a balance running off
    assert booked.pools["model_allowance"].iloc[0] == pytest.approx(0.75 * baseline + 0.25 * adverse)
    table = booked.by_scenario.set_index("segment")
    assert table.loc["total", "baseline (weight 0.75)"] == pytest.approx(baseline)
    assert table.loc["total", "adverse (weight 0.25)"] == pytest.approx(adverse)
    assert table.loc["cards", "weighted"] == pytest.approx(0.75 * baseline + 0.25 * adverse)
    assert booked.paths.groupby("scenario")["loss_rate"].apply(list).to_dict() == {"baseline": [2.0, 2.0], "adverse": [6.0, 10.0]}
    assert booked.pools["forecast_next"].iloc[0] == pytest.approx(0.75 * 2.0 + 0.25 * 6.0)
    with pytest.raises(ValueError, match="must sum to 1"):
        book(ORIGIN, pools, both, NO_OVERLAYS, 0, weights={"baseline": 0.75, "adverse": 0.5})
    with pytest.raises(ValueError, match=r"no weight for \['adverse', 'baseline'\]"):
        book(ORIGIN, pools, both, NO_OVERLAYS, 0)
