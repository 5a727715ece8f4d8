"""Rates as prompts and answers write them: three significant digits, two to four decimals, one rule for both."""

import math
from decimal import Decimal

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from cecl_pipeline.envs.answer import AnswerFormat
from cecl_pipeline.panel.text_format import format_rate, rates

RATES = st.floats(min_value=-20, max_value=60, allow_nan=False).filter(lambda v: v == 0 or abs(v) >= 1e-6)


def test_small_rate_segments_stay_apart_and_large_rates_keep_two_decimals():
    assert rates(np.array([0.05, 0.04, 0.0432, 0.0449, 3.456, 12.3, 0.0, np.nan])).to_pylist() == [
        "0.0500", "0.0400", "0.0432", "0.0449", "3.46", "12.30", "0.00", "n/a"]
    assert rates(np.array([0.1, -0.004]), signed=True).to_pylist() == ["+0.100", "-0.0040"]


@given(st.lists(RATES, min_size=1, max_size=30))
def test_every_rate_shows_three_significant_digits_unless_four_decimals_cap_it(values):
    for value, text in zip(values, rates(np.asarray(values)).to_pylist(), strict=True):
        decimals = len(text.split(".")[1])
        assert 2 <= decimals <= 4
        assert abs(float(text) - value) <= 0.5 * 10**-decimals + 1e-12
        shown = len(text.lstrip("-").replace(".", "").lstrip("0"))
        if decimals < 4 and Decimal(text) != 0:
            assert shown >= 3, (value, text)


@given(RATES)
def test_answers_are_written_as_prompts_write_rates_and_parse_back(value):
    text = format_rate(value)
    assert text == rates(np.array([value])).to_pylist()[0]
    assert AnswerFormat(strict=True).parse(AnswerFormat().render(value)) == float(text)
    assert math.isclose(float(text), value, abs_tol=0.5 * 10 ** -len(text.split(".")[1]) + 1e-12)
