"""The synthetic default panel and macro table: shape, accounting identities and the credit-cycle shape."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cecl_pipeline.bootstrap.synthetic import DEFAULT_SEGMENTS, synthesize_macro, synthesize_panel
from cecl_pipeline.panel.schema import KEY_COLUMNS, MACRO_COLUMNS, MACRO_QUARTER, OPTIONAL_AMOUNT_COLUMNS, RATE_COLUMN
from cecl_pipeline.quarters import QuarterError, quarter_range

PANEL_COLUMNS = [*KEY_COLUMNS, RATE_COLUMN, *OPTIONAL_AMOUNT_COLUMNS]


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return synthesize_panel(n_banks=60, seed=7)


@pytest.fixture(scope="module")
def macro() -> pd.DataFrame:
    return synthesize_macro(seed=7)


def _years(frame: pd.DataFrame, first: int, last: int) -> pd.DataFrame:
    year = frame["quarter"].str[:4].astype(int)
    return frame[(year >= first) & (year <= last)]


def test_same_seed_gives_identical_frames():
    pd.testing.assert_frame_equal(synthesize_panel(n_banks=5, seed=3), synthesize_panel(n_banks=5, seed=3))
    pd.testing.assert_frame_equal(synthesize_macro(seed=3), synthesize_macro(seed=3))


def test_panel_without_macro_uses_the_seeded_macro():
    explicit = synthesize_panel(n_banks=5, seed=3, macro=synthesize_macro(seed=3))
    pd.testing.assert_frame_equal(synthesize_panel(n_banks=5, seed=3), explicit)


def test_different_seeds_differ():
    a, b = synthesize_panel(n_banks=5, seed=1), synthesize_panel(n_banks=5, seed=2)
    assert not np.allclose(a[RATE_COLUMN], b[RATE_COLUMN])
    assert not np.allclose(a["loans"], b["loans"])
    assert not np.allclose(synthesize_macro(seed=1)["unemployment_rate"], synthesize_macro(seed=2)["unemployment_rate"])


def test_panel_columns_dtypes_and_size(panel):
    assert list(panel.columns) == PANEL_COLUMNS
    for column in KEY_COLUMNS:
        assert pd.api.types.is_string_dtype(panel[column]), column
    for column in (RATE_COLUMN, *OPTIONAL_AMOUNT_COLUMNS):
        assert panel[column].dtype == np.float64, column
    assert len(panel) == 60 * len(DEFAULT_SEGMENTS) * 100
    assert set(panel["segment"]) == set(DEFAULT_SEGMENTS)
    assert panel["entity_id"].iloc[0] == "BANK_0001" and panel["entity_id"].str.fullmatch(r"BANK_\d{4}").all()
    assert list(panel["quarter"].unique()) == quarter_range("2000Q1", "2024Q4")
    assert np.isfinite(panel[[RATE_COLUMN, *OPTIONAL_AMOUNT_COLUMNS]].to_numpy()).all()


def test_panel_is_sorted_with_unique_keys(panel):
    order = ["quarter", "entity_id", "segment"]
    pd.testing.assert_frame_equal(panel, panel.sort_values(order, kind="stable").reset_index(drop=True))
    assert not panel.duplicated(list(KEY_COLUMNS)).any()


def test_bank_ids_keep_sort_order_beyond_four_digits():
    ids = synthesize_panel(n_banks=10_001, first="2020Q1", last="2020Q1", segments=("credit_card",))["entity_id"]
    assert ids.is_monotonic_increasing and ids.iloc[-1] == "BANK_10001"


def test_amounts_are_consistent_with_the_rate(panel):
    co, rec, net, loans = (panel[c].to_numpy() for c in ("charge_offs", "recoveries", "net_charge_offs", "loans"))
    assert (loans > 0).all()
    assert (rec >= 0).all() and (co >= 0).all()
    scale = np.maximum(np.abs(co), np.abs(rec))
    assert (np.abs((co - rec) - net) <= 4 * np.finfo(float).eps * scale).all()
    np.testing.assert_allclose(400 * net / loans, panel[RATE_COLUMN], rtol=1e-12, atol=1e-12)


def test_net_recoveries_exist_but_are_rare_and_small(panel):
    rates = panel[RATE_COLUMN]
    negative = rates < 0
    assert 0.002 < negative.mean() < 0.05
    assert rates[negative].min() > -0.5
    assert (rates > -10).all() and (rates < 50).all()
    negative_rows = panel[negative]
    assert (negative_rows["recoveries"] > negative_rows["charge_offs"]).all()


def test_stress_raises_rates_in_every_segment(panel):
    stress = _years(panel, 2009, 2010).groupby("segment")[RATE_COLUMN].mean()
    calm = _years(panel, 2005, 2006).groupby("segment")[RATE_COLUMN].mean()
    assert (stress > 2 * calm).all(), pd.concat({"stress": stress, "calm": calm}, axis=1)


def test_rate_levels_look_like_fed_charge_off_rates(panel):
    calm = _years(panel, 2005, 2006).groupby("segment")[RATE_COLUMN].mean()
    peak = panel.assign(year=panel["quarter"].str[:4]).groupby(["segment", "year"])[RATE_COLUMN].mean().groupby("segment").max()
    assert 2.5 < calm["credit_card"] < 6 and 8 < peak["credit_card"] < 16
    for segment in ("commercial_real_estate", "residential_mortgage"):
        assert calm[segment] < 0.3 and 1.2 < peak[segment] < 4, segment
    assert 0.15 < calm["commercial_industrial"] < 0.8 and 1 < peak["commercial_industrial"] < 3.5


def test_credit_card_losses_are_seasonal(panel):
    cards = panel[panel["segment"] == "credit_card"]
    by_quarter = cards.groupby(cards["quarter"].str[-1])[RATE_COLUMN].mean()
    assert by_quarter["1"] > by_quarter["3"]


def test_macro_shape_and_completeness(macro):
    assert list(macro.columns) == [MACRO_QUARTER, *MACRO_COLUMNS]
    assert list(macro[MACRO_QUARTER]) == quarter_range("2000Q1", "2024Q4")
    values = macro[list(MACRO_COLUMNS)]
    assert (values.dtypes == np.float64).all()
    assert np.isfinite(values.to_numpy()).all()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_unemployment_peaks_in_the_2009_stress(seed):
    macro = synthesize_macro(seed=seed).set_index(MACRO_QUARTER)
    u = macro["unemployment_rate"]
    assert "2009Q1" <= u.idxmax() <= "2010Q4"
    assert u["2009Q4"] - u["2007Q4"] > 3.5
    assert u["2020Q2"] - u["2019Q4"] > 2.5  # the short, sharp spike


def test_macro_moves_together_in_stress(macro):
    m = macro.set_index(MACRO_QUARTER)
    assert m.loc["2008Q1":"2009Q4", "real_gdp_growth"].mean() < m.loc["2005Q1":"2006Q4", "real_gdp_growth"].mean()
    assert m.loc["2011Q4", "house_price_index"] < m.loc["2007Q1", "house_price_index"]
    assert m.loc["2008Q1":"2009Q4", "vix"].max() > 1.5 * m.loc["2005Q1":"2006Q4", "vix"].mean()
    spread = m["bbb_yield"] - m["treasury_10y"]
    assert spread.loc["2008Q3":"2009Q2"].mean() > spread.loc["2005Q1":"2006Q4"].mean() + 1
    np.testing.assert_allclose(m["prime_rate"], m["treasury_3m"] + 3, atol=0.5)
    assert (m["treasury_3m"] >= 0).all() and m["cpi_inflation"].median() == pytest.approx(2.5, abs=1)


def test_panel_follows_a_supplied_macro():
    base = synthesize_macro(first="2010Q1", last="2014Q4", seed=0)
    worse = base.assign(unemployment_rate=base["unemployment_rate"] + 3)
    mild = synthesize_panel(n_banks=20, first="2010Q1", last="2014Q4", macro=base)[RATE_COLUMN].mean()
    harsh = synthesize_panel(n_banks=20, first="2010Q1", last="2014Q4", macro=worse)[RATE_COLUMN].mean()
    assert harsh > 1.5 * mild


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="lacks"):
        synthesize_panel(n_banks=2, macro=synthesize_macro(first="2005Q1"))
    with pytest.raises(ValueError, match="unknown segments"):
        synthesize_panel(n_banks=2, segments=("credit_cards",))
    with pytest.raises(QuarterError):
        synthesize_macro(first="2010Q1", last="2009Q4")


def test_a_thousand_banks_over_sixty_quarters():
    frame = synthesize_panel(n_banks=1000, first="2010Q1", last="2024Q4", seed=11)
    assert len(frame) == 1000 * len(DEFAULT_SEGMENTS) * 60
    assert frame["entity_id"].nunique() == 1000 and frame["quarter"].nunique() == 60


def test_the_synthetic_default_writes_a_portfolio_for_its_last_quarter_that_the_reader_accepts(synthetic_layout):
    from cecl_pipeline.bootstrap.synthetic_portfolio import SEGMENT_TERMS
    from cecl_pipeline.panel.portfolio import read_portfolio_file

    pools = read_portfolio_file(synthetic_layout.portfolio_csv("2019Q4"), DEFAULT_SEGMENTS)
    assert len(pools) == 8 * len(DEFAULT_SEGMENTS) and not pools.duplicated(["entity_id", "segment"]).any()
    assert (pools["amortized_cost"] > 0).all()
    for segment, (_, life, prepayment) in SEGMENT_TERMS.items():
        rows = pools[pools["segment"] == segment]
        assert rows["remaining_life_quarters"].between(0.8 * life - 0.05, 1.2 * life + 0.05).all() and (rows["prepayment_rate"] == prepayment).all()
    assert not synthetic_layout.portfolio_csv("2019Q3").exists()


def test_the_synthetic_default_writes_a_baseline_and_a_severely_adverse_scenario_from_the_quarter_after_its_last(synthetic_layout):
    from cecl_pipeline.panel.scenario_weights import read_weights_file
    from cecl_pipeline.panel.scenarios import read_stored_scenarios, scenarios_from

    stored = read_stored_scenarios(synthetic_layout.scenarios_dir)
    assert sorted(stored) == ["synthetic_baseline", "synthetic_severely_adverse"]
    paths = scenarios_from(stored, [], "2019Q4")  # both start at 2020Q1, the quarter after the panel's last
    assert sorted(paths) == sorted(stored) and all(len(p) == 13 for p in paths.values())
    baseline, adverse = (paths[k].set_index("quarter") for k in ("synthetic_baseline", "synthetic_severely_adverse"))
    assert adverse.loc["2021Q2", "unemployment_rate"] - baseline.loc["2021Q2", "unemployment_rate"] == pytest.approx(4.5)
    assert (adverse["house_price_index"] < baseline["house_price_index"]).all()
    weights = read_weights_file(synthetic_layout.scenario_weights_csv("2019Q4"), stored)
    assert weights == {"synthetic_baseline": 0.8, "synthetic_severely_adverse": 0.2}
