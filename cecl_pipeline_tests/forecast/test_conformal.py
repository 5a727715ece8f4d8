"""Walk-forward conformal calibration: the quantile level, the band by hand, no look-ahead, the rolling window, and coverage on simulated data."""

import numpy as np
import pandas as pd
import pytest

from cecl_pipeline.forecast.conformal import adjustment, calibrate, calibration_table, conformal_rank, coverage_table
from cecl_pipeline.quarters import quarter_range


@pytest.mark.parametrize(("n", "rank"), [(4, 4), (9, 8), (10, 9), (19, 16), (100, 81), (1, 1), (3, 3)])
def test_the_rank_is_the_ceiling_of_n_plus_one_times_eighty_percent_capped_at_n(n, rank):
    # (n+1)·0.8: 4.0 → 4, 8.0 → 8, 8.8 → 9, 16.0 → 16, 80.8 → 81; below n = 4 it would exceed n, so the largest
    assert conformal_rank(n) == rank


def test_the_adjustment_is_the_score_at_that_rank():
    scores = np.array([0.5, -1.0, 2.0, 0.1, 3.0, -0.2, 0.4, 1.0, 0.7, -0.5])  # n = 10 → the 9th smallest
    assert adjustment(scores) == 2.0
    assert adjustment(np.array([0.3, np.nan, -0.1, 0.2])) == 0.3  # 3 finite scores: the largest
    assert np.isnan(adjustment(np.array([])))


def rows(quarter, model, actual, q10, q90, scale):
    n = len(actual)
    return pd.DataFrame({"quarter": quarter, "entity_id": [f"e{i}" for i in range(n)], "segment": "card", "model": model,
                         "actual": actual, "point": 0.5, "q10": q10, "q90": q90, "scale": scale})


def test_the_band_by_hand_first_quarter_flagged_and_point_only_models_left_alone():
    past = rows("2019Q1", "m", [1.5, -0.2, 0.5, 2.0], 0.0, 1.0, [1.0, 2.0, 1.0, 0.5])  # scores 0.5, 0.1, −0.5, 2.0
    now = rows("2019Q2", "m", [1.4], 1.0, 2.0, 0.1)
    point_only = rows("2019Q2", "persistence", [1.0], np.nan, np.nan, 0.1)
    out = calibrate(pd.concat([past, now, point_only], ignore_index=True))
    assert not out["calibrated"].iloc[:4].any()
    assert out[["q10_cal", "q90_cal"]].iloc[:4].to_numpy().tolist() == [[0.0, 1.0]] * 4  # uncalibrated: the band as it was
    # n = 4 → rank 4 → adj 2.0, in units of this row's scale 0.1
    assert out.loc[4, "calibrated"] and out.loc[4, ["q10_cal", "q90_cal"]].tolist() == pytest.approx([0.8, 2.2])
    assert not out.loc[5, "calibrated"] and out.loc[5, ["q10_cal", "q90_cal"]].isna().all()


def test_a_band_narrowed_past_its_midpoint_stops_there():
    past = rows("2019Q1", "m", [0.5] * 4, 0.0, 1.0, 1.0)  # every actual in the middle: score −0.5
    out = calibrate(pd.concat([past, rows("2019Q2", "m", [1.0], 1.0, 1.2, 1.0)], ignore_index=True))
    assert out.loc[4, ["q10_cal", "q90_cal"]].tolist() == pytest.approx([1.1, 1.1])  # 1.5 and 0.7 would cross


def test_each_model_is_calibrated_on_its_own_past_only():
    wide = rows("2019Q1", "wide", [0.5] * 4, 0.0, 1.0, 1.0)  # scores −0.5
    narrow = rows("2019Q1", "narrow", [3.0] * 4, 0.0, 1.0, 1.0)  # scores 2.0
    now = pd.concat([rows("2019Q2", m, [0.5], 0.0, 1.0, 1.0) for m in ("wide", "narrow")], ignore_index=True)
    out = calibrate(pd.concat([wide, narrow, now], ignore_index=True)).set_index(["quarter", "model"]).sort_index()
    assert out.loc[("2019Q2", "wide"), ["q10_cal", "q90_cal"]].tolist() == pytest.approx([0.5, 0.5])
    assert out.loc[("2019Q2", "narrow"), ["q10_cal", "q90_cal"]].tolist() == pytest.approx([-2.0, 3.0])


def simulated(seed=0, series=40, quarters=30, width=0.5):
    """A forecaster whose band is ``width`` times the true 10–90 band of N(0, σ²), σ per series and given as its scale."""
    rng = np.random.default_rng(seed)
    sigma = rng.lognormal(-1.5, 0.8, series)
    frames = [rows(q, "narrow", rng.normal(0, sigma), -width * 1.2816 * sigma, width * 1.2816 * sigma, sigma)
              for q in quarter_range("2010Q1", "2017Q2")[:quarters]]
    return pd.concat(frames, ignore_index=True)


def test_a_residual_dated_q_or_later_does_not_move_the_band_for_q():
    forecasts = simulated(quarters=8)
    target = "2011Q1"
    before = calibrate(forecasts)
    later = forecasts["quarter"] >= target
    changed = forecasts.assign(actual=forecasts["actual"].where(~later, forecasts["actual"] + 10.0))
    after = calibrate(changed)
    at_q = forecasts["quarter"] == target
    pd.testing.assert_frame_equal(before.loc[at_q, ["q10_cal", "q90_cal"]], after.loc[at_q, ["q10_cal", "q90_cal"]])
    earlier = forecasts.assign(actual=forecasts["actual"].where(forecasts["quarter"] >= target, forecasts["actual"] + 10.0))
    assert not np.allclose(calibrate(earlier).loc[at_q, "q90_cal"], before.loc[at_q, "q90_cal"])  # the past does move it


def test_only_the_four_quarters_before_q_calibrate_it():
    forecasts = simulated(quarters=8)
    target = "2011Q3"
    at_q = forecasts["quarter"] == target
    before = calibrate(forecasts).loc[at_q, "q90_cal"]

    def shifted(quarters):
        moved = forecasts["quarter"].isin(quarters)
        return calibrate(forecasts.assign(actual=forecasts["actual"].where(~moved, forecasts["actual"] + 10.0))).loc[at_q, "q90_cal"]

    pd.testing.assert_series_equal(shifted(["2010Q1", "2010Q2"]), before)  # older than a year: out of the window
    assert (shifted(["2010Q3"]) > before).all()  # the oldest quarter inside it widens the band


def test_a_too_narrow_band_covers_about_eighty_percent_after_calibration():
    out = calibrate(simulated())
    table = calibration_table(out).set_index("model").loc["narrow"]
    assert table["calibrated_rows"] == 29 * 40  # every quarter but the first
    assert table["coverage_before"] == pytest.approx(0.48, abs=0.05)  # P(|Z| < 0.64): the band is half as wide as it should be
    assert table["coverage_after"] == pytest.approx(0.80, abs=0.03)


def test_coverage_table_counts_only_calibrated_rows():
    past = rows("2019Q1", "m", [1.5, -0.2, 0.5, 2.0], 0.0, 1.0, [1.0, 2.0, 1.0, 0.5])
    now = rows("2019Q2", "m", [0.7, 2.5], 1.0, 2.0, 0.1)  # band [0.8, 2.2]: both outside
    table = coverage_table(calibrate(pd.concat([past, now, rows("2019Q2", "p", [1.0], np.nan, np.nan, 0.1)], ignore_index=True)))
    assert table["model"].tolist() == ["m", "p"]
    assert table.loc[0, "coverage_10_90_cal"] == 0.0 and np.isnan(table.loc[1, "coverage_10_90_cal"])


def test_a_table_without_scale_is_left_uncalibrated():
    out = calibrate(simulated(quarters=3).drop(columns="scale"))
    assert not out["calibrated"].any() and calibration_table(out).empty
