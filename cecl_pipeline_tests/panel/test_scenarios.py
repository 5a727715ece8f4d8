"""The Fed's scenario tables: the real files read as published, and every malformed one refused with file, row and column."""

import pandas as pd
import pytest

from cecl_pipeline.panel.errors import DropFileError
from cecl_pipeline.panel.scenarios import (
    PUBLISHED_COLUMNS,
    check_starts_after,
    read_scenario_file,
    read_stored_scenarios,
    scenarios_from,
    store_scenario,
)
from cecl_pipeline.panel.schema import MACRO_COLUMNS
from cecl_pipeline_tests.conftest import SHARED_DATA

SCENARIOS = SHARED_DATA / "scenarios"


@pytest.mark.parametrize("name", sorted(p.name for p in SCENARIOS.glob("*.csv")))
def test_every_real_scenario_file_reads_into_the_macro_tables_columns(name):
    scenario = read_scenario_file(SCENARIOS / name)
    published = pd.read_csv(SCENARIOS / name)
    assert scenario.name == published["Scenario Name"].iloc[0] and len(scenario.quarters) == 13
    assert scenario.quarters[0] == published["Date"].iloc[0].replace(" ", "")
    for published_name, ours in zip(PUBLISHED_COLUMNS, MACRO_COLUMNS, strict=True):
        assert scenario.path[ours].tolist() == published[published_name].astype(float).tolist()


def test_the_2026_baseline_follows_the_macro_history_and_its_key_is_its_name():
    scenario = read_scenario_file(SCENARIOS / "fed_2026_proposed_baseline_domestic.csv")
    history_end = pd.read_csv(SHARED_DATA / "frb_macro_history.csv")["quarter"].iloc[-1]
    check_starts_after(scenario, history_end)  # 2025Q4 → 2026Q1
    with pytest.raises(ValueError, match=r"row 2, column 'Date'.*starts 2026Q1, but a forecast from 2026Q2 needs it to start 2026Q3"):
        check_starts_after(scenario, "2026Q2")
    assert scenario.key == "supervisory_baseline"


def edited(tmp_path, edit):
    lines = (SCENARIOS / "fed_2026_proposed_severely_adverse_domestic.csv").read_text().splitlines()
    path = tmp_path / "scenario.csv"
    path.write_text("\n".join(edit(lines)) + "\n")
    return path


def cell(lines, row, column, value):
    """``lines`` with the cell at CSV line ``row`` (header = 1) and 0-based ``column`` replaced."""
    fields = lines[row - 1].split(",")
    fields[column] = value
    return [*lines[: row - 1], ",".join(fields), *lines[row:]]


@pytest.mark.parametrize(("edit", "row", "column", "reason"), [
    (lambda ls: cell(ls, 1, 17, "Volatility"), 1, "Volatility", "unknown column"),
    (lambda ls: cell(ls, 5, 1, "2026 Q3"), 5, "Date", "duplicate quarter: 2026Q3 is also on row 4"),
    (lambda ls: [*ls[:3], *ls[4:]], 4, "Date", "expected 2026Q3"),  # 2026Q3 dropped: a gap
    (lambda ls: cell(ls, 3, 1, "mid 2026"), 3, "Date", "not a quarter"),
    (lambda ls: cell(ls, 6, 6, ""), 6, "Unemployment rate", "missing value"),
    (lambda ls: cell(ls, 6, 6, "high"), 6, "Unemployment rate", "not a number"),
    (lambda ls: cell(ls, 7, 0, "Supervisory Baseline"), 7, "Scenario Name", "a second scenario"),
])
def test_a_malformed_scenario_is_refused_naming_file_row_and_column(tmp_path, edit, row, column, reason):
    path = edited(tmp_path, edit)
    with pytest.raises(DropFileError) as refused:
        read_scenario_file(path)
    message = str(refused.value)
    assert str(path) in message and f"row {row}, column {column!r}" in message and reason in message


def test_a_missing_column_is_named(tmp_path):
    path = edited(tmp_path, lambda ls: [",".join(line.split(",")[:-1]) for line in ls])
    with pytest.raises(DropFileError, match=r"missing required column.*Market Volatility Index"):
        read_scenario_file(path)


def test_a_stored_scenario_reads_back_under_its_key(tmp_path):
    scenario = read_scenario_file(SCENARIOS / "fed_2025_severely_adverse_domestic.csv")
    path = store_scenario(scenario, tmp_path / "scenarios")
    assert path.name == "supervisory_severely_adverse.csv" and [p.name for p in path.parent.iterdir()] == [path.name]
    stored = pd.read_csv(path)
    assert stored["quarter"].tolist() == scenario.quarters and stored["vix"].tolist() == scenario.path["vix"].tolist()
    assert set(stored["scenario"]) == {"Supervisory Severely Adverse"}



def test_stored_scenarios_are_chosen_by_name_or_by_their_first_quarter(tmp_path):
    for name in ("fed_2025_baseline_domestic", "fed_2025_severely_adverse_domestic"):
        store_scenario(read_scenario_file(SCENARIOS / f"{name}.csv"), tmp_path)
    stored = read_stored_scenarios(tmp_path)
    assert sorted(stored) == ["supervisory_baseline", "supervisory_severely_adverse"]
    original = read_scenario_file(SCENARIOS / "fed_2025_baseline_domestic.csv")
    pd.testing.assert_frame_equal(stored["supervisory_baseline"].path, original.path, check_dtype=False)
    origin = original.quarters[0]  # "2025Q1" starts a forecast from 2024Q4
    before = f"{int(origin[:4]) - 1}Q4"
    assert sorted(scenarios_from(stored, [], before)) == sorted(stored)
    assert scenarios_from(stored, [], origin) == {}  # none starts the quarter after
    with pytest.raises(ValueError, match=r"fed_2025_baseline_domestic.csv: row 2, column 'Date': the scenario 'Supervisory Baseline' starts"):
        scenarios_from(stored, ["supervisory_baseline"], origin)
    with pytest.raises(ValueError, match="no stored scenario 'upside': the stored ones are supervisory_baseline, supervisory_severely_adverse"):
        scenarios_from(stored, ["upside"], before)
