"""The portfolio file: what a good one reads as, and every bad cell refused with its row and column."""

import pytest

from cecl_pipeline.panel.errors import DropFileError
from cecl_pipeline.panel.portfolio import read_portfolio_file

SEGMENTS = {"credit_card", "residential_mortgage"}
HEADER = "entity_id,segment,amortized_cost,remaining_life_quarters,prepayment_rate\n"


def write(tmp_path, body: str, header: str = HEADER):
    path = tmp_path / "2023Q4.csv"
    path.write_text(header + body)
    return path


def test_a_good_file_reads_with_blank_prepayment_as_none_and_its_rows_kept(tmp_path):
    path = write(tmp_path, "BANK_1,credit_card,1000000,6,0.1\nBANK_1,residential_mortgage, 2500000.5 ,28.5,\n")
    pools = read_portfolio_file(path, SEGMENTS)
    assert pools[["entity_id", "segment"]].values.tolist() == [["BANK_1", "credit_card"], ["BANK_1", "residential_mortgage"]]
    assert pools["amortized_cost"].tolist() == [1_000_000.0, 2_500_000.5]
    assert pools["remaining_life_quarters"].tolist() == [6.0, 28.5] and pools["prepayment_rate"].tolist() == [0.1, 0.0]
    assert pools["source_row"].tolist() == [2, 3] and set(pools["source_file"]) == {"2023Q4.csv"}


def test_the_prepayment_column_may_be_left_out(tmp_path):
    path = write(tmp_path, "BANK_1,credit_card,10,4\n", header="entity_id,segment,amortized_cost,remaining_life_quarters\n")
    assert read_portfolio_file(path, SEGMENTS)["prepayment_rate"].tolist() == [0.0]


@pytest.mark.parametrize(("row", "column", "reason"), [
    ("BANK_2,credit_card,-5,4,", "amortized_cost", "≥ 0"),
    ("BANK_2,credit_card,,4,", "amortized_cost", "missing value"),
    ("BANK_2,credit_card,ten,4,", "amortized_cost", "not a number"),
    ("BANK_2,auto_loans,5,4,", "segment", "unknown segment"),
    ("BANK_2,credit_card,5,,", "remaining_life_quarters", "missing value"),
    ("BANK_2,credit_card,5,0,", "remaining_life_quarters", "> 0"),
    ("BANK_2,credit_card,5,-2,", "remaining_life_quarters", "> 0"),
    ("BANK_2,credit_card,5,4,1.2", "prepayment_rate", "[0, 1)"),
    ("BANK_1,credit_card,5,4,", "segment", "duplicate pool: the same entity and segment as row 2"),
    (",credit_card,5,4,", "entity_id", "missing value"),
])
def test_each_bad_cell_is_refused_naming_file_row_and_column(tmp_path, row, column, reason):
    path = write(tmp_path, f"BANK_1,credit_card,1000,6,0.1\n{row}\n")
    with pytest.raises(DropFileError) as refused:
        read_portfolio_file(path, SEGMENTS)
    message = str(refused.value)
    assert str(path) in message and f"row 3, column {column!r}" in message and reason in message


def test_every_offence_is_listed_at_once(tmp_path):
    path = write(tmp_path, "BANK_1,credit_card,-1,6,\nBANK_2,mystery,5,0,\n")
    with pytest.raises(DropFileError) as refused:
        read_portfolio_file(path, SEGMENTS)
    assert [(o.row, o.column) for o in refused.value.offences] == [
        (2, "amortized_cost"), (3, "segment"), (3, "remaining_life_quarters")]


def test_a_missing_required_column_is_named(tmp_path):
    path = write(tmp_path, "BANK_1,credit_card,1000\n", header="entity_id,segment,amortized_cost\n")
    with pytest.raises(DropFileError, match=r"missing required column.*remaining_life_quarters"):
        read_portfolio_file(path, SEGMENTS)
