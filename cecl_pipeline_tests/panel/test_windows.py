import numpy as np
import pandas as pd
import pytest

from cecl_pipeline.panel.windows import LookaheadError, assert_no_lookahead, build_windows, history_quarters
from cecl_pipeline.quarters import quarter_range


def panel(rows):
    return pd.DataFrame(rows, columns=["entity_id", "segment", "quarter", "nco_rate"])


def series(entity, quarters, start=1.0):
    return [(entity, "cards", q, start + i) for i, q in enumerate(quarters)]


HISTORY = quarter_range("2016Q1", "2018Q4")


def test_window_is_the_twelve_quarters_before_the_target_in_order():
    history = panel(series("A", quarter_range("2015Q1", "2018Q4")))  # older quarters are ignored
    windows = build_windows(history, panel([("A", "cards", "2019Q1", 9.0)]), "2019Q1")
    assert windows.history_quarters == HISTORY == history_quarters("2019Q1", 12)
    np.testing.assert_array_equal(windows.history[0], np.arange(5.0, 17.0))
    assert windows.target.tolist() == [9.0]


def test_series_with_gaps_are_counted_not_silently_dropped():
    gappy = [r for r in series("B", HISTORY) if r[2] not in ("2017Q2", "2018Q1")]
    history = panel(series("A", HISTORY) + gappy + series("C", HISTORY))
    targets = panel([("A", "cards", "2019Q1", 1.0), ("B", "cards", "2019Q1", 2.0)])  # C has no target
    windows = build_windows(history, targets, "2019Q1")
    assert windows.keys["entity_id"].tolist() == ["A"]
    assert windows.gaps.to_dict("records") == [{"entity_id": "B", "segment": "cards", "missing_quarters": 2}]
    assert windows.without_target == 1


@pytest.mark.parametrize("leaked", ["2019Q1", "2019Q2"])
def test_history_dated_at_or_after_the_target_is_refused(leaked):
    history = panel([*series("A", HISTORY), ("A", "cards", leaked, 99.0)])
    with pytest.raises(LookaheadError, match=f"data dated {leaked}"):
        build_windows(history, panel([("A", "cards", "2019Q1", 1.0)]), "2019Q1")


def test_guard_accepts_strictly_earlier_quarters():
    assert_no_lookahead(["2018Q4", "2018Q3"], "2019Q1", "x")
    with pytest.raises(LookaheadError):
        assert_no_lookahead(["2018Q4", "2019Q1"], "2019Q1", "x")


def test_targets_from_another_quarter_are_refused():
    with pytest.raises(ValueError, match="must all be dated 2019Q1"):
        build_windows(panel(series("A", HISTORY)), panel([("A", "cards", "2019Q2", 1.0)]), "2019Q1")
