import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cecl_pipeline import quarters as q


def test_label_and_partition_key_round_trip():
    assert q.to_partition_key("2019Q1") == "2019-01-01"
    assert q.to_partition_key("2019Q4") == "2019-10-01"
    assert q.label("2019-07-01") == "2019Q3"
    assert q.label(" 2019q2 ") == "2019Q2"


@given(st.integers(min_value=1900 * 4, max_value=2200 * 4))
def test_ordinal_round_trip(ordinal):
    label = q.from_ordinal(ordinal)
    assert q.to_ordinal(label) == ordinal
    assert q.label(q.to_partition_key(label)) == label


def test_shift_and_range_cross_years():
    assert q.shift("2019Q1", -1) == "2018Q4"
    assert q.shift("2018Q4", 5) == "2020Q1"
    assert q.quarter_range("2018Q3", "2019Q2") == ["2018Q3", "2018Q4", "2019Q1", "2019Q2"]


@pytest.mark.parametrize("bad", ["2019Q5", "2019-02-01", "Q1 2019", "", "2019"])
def test_bad_quarters_are_refused_with_the_value(bad):
    with pytest.raises(q.QuarterError, match="is not a quarter"):
        q.to_ordinal(bad)


def test_empty_range_is_refused():
    with pytest.raises(q.QuarterError, match="end is before the start"):
        q.quarter_range("2020Q1", "2019Q4")


def test_vectorised_normalisation_matches_scalar():
    values = pd.Series(["2019Q1", "2019q3", "2019-10-01", "2019-02-01", "garbage", None])
    out = q.normalise_quarter_column(values)
    assert out.tolist()[:3] == ["2019Q1", "2019Q3", "2019Q4"]
    assert out.iloc[3:].isna().all()
