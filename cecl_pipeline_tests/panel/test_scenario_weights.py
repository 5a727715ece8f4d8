"""The scenario-weights file: what a good one reads as, and every bad cell refused with its row and column."""

import pytest

from cecl_pipeline.panel.errors import DropFileError
from cecl_pipeline.panel.scenario_weights import read_weights_file

SCENARIOS = {"baseline", "severely_adverse"}


def write(tmp_path, body: str, header: str = "scenario,weight\n"):
    path = tmp_path / "2024Q4.csv"
    path.write_text(header + body)
    return path


def test_a_good_file_reads_as_scenario_to_weight(tmp_path):
    assert read_weights_file(write(tmp_path, "baseline,0.7\nseverely_adverse,0.3\n"), SCENARIOS) == {
        "baseline": 0.7, "severely_adverse": 0.3}


@pytest.mark.parametrize(("body", "where", "reason"), [
    ("baseline,0.7\nupside,0.3\n", "row 3, column 'scenario'", "not a scenario of this forecast"),
    ("baseline,0.7\nbaseline,0.3\n", "row 3, column 'scenario'", "a second weight for this scenario"),
    ("baseline,0.7\n,0.3\n", "row 3, column 'scenario'", "missing value"),
    ("baseline,1.3\nseverely_adverse,-0.3\n", "row 3, column 'weight'", "≥ 0"),
    ("baseline,0.7\nseverely_adverse,thirty\n", "row 3, column 'weight'", "not a number"),
    ("baseline,0.7\nseverely_adverse,\n", "row 3, column 'weight'", "missing value"),
    ("baseline,1.0\n", "column 'scenario'", "no weight for the forecast scenario(s) severely_adverse"),
    ("baseline,0.7\nseverely_adverse,0.2\n", "column 'weight'", "the weights on rows 2–3 sum to 0.9, not 1"),
])
def test_each_bad_weights_file_is_refused_naming_file_row_and_column(tmp_path, body, where, reason):
    path = write(tmp_path, body)
    with pytest.raises(DropFileError) as refused:
        read_weights_file(path, SCENARIOS)
    message = str(refused.value)
    assert str(path) in message and where in message and reason in message, message


def test_a_missing_column_is_named(tmp_path):
    with pytest.raises(DropFileError, match=r"missing required column.*weight"):
        read_weights_file(write(tmp_path, "baseline\n", header="scenario\n"), SCENARIOS)
