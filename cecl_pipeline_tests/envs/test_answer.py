"""The answer format: reading the number back, strictness, and writing answers the parser reads."""

import pytest

from cecl_pipeline.envs.answer import AnswerFormat

LOOSE, STRICT = AnswerFormat(), AnswerFormat(strict=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<answer>1.23</answer>", 1.23),
        ("The trend is up.\n<answer> -0.5 </answer>", -0.5),
        ("<answer>2%</answer>", 2.0),
        ("<answer>.75</answer>", 0.75),
        ("first <answer>1</answer> then <answer>3.5</answer>", 3.5),  # the last tag counts
        ("<answer>1,23</answer>", None),
        ("<answer>about 2</answer>", None),
        ("<answer>nan</answer>", None),
        ("<answer>1e999</answer>", None),
        ("<answer>1.2", None),
        ("1.23", None),
        ("", None),
    ],
)
def test_parse(text, expected):
    assert LOOSE.parse(text) == expected


def test_strict_allows_nothing_around_the_tag():
    assert STRICT.parse(" <answer>1.5</answer>\n") == 1.5
    assert STRICT.parse("I think <answer>1.5</answer>") is None and LOOSE.parse("I think <answer>1.5</answer>") == 1.5
    assert LOOSE.well_formed("<answer>1.5</answer>") and not LOOSE.well_formed("<answer>1</answer><answer>2</answer>")


def test_rendered_answers_parse_back_to_their_rounded_value():
    assert LOOSE.render(0.125) == "<answer>0.125</answer>" and LOOSE.render(4.2) == "<answer>4.20</answer>"
    for value, written in ((0.0, 0.0), (-0.37, -0.37), (4.2, 4.2), (12.346, 12.35), (0.04321, 0.0432)):
        assert STRICT.parse(STRICT.render(value)) == written
