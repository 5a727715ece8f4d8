"""The overlays file: what a good one reads as, and every bad cell refused with its row and column."""

import pytest

from cecl_pipeline.panel.errors import DropFileError
from cecl_pipeline.panel.overlays import read_overlay_file

SEGMENTS = {"credit_card", "residential_mortgage"}
HEADER = "segment,adjustment_bp,reason,approver\n"


def write(tmp_path, body: str, header: str = HEADER):
    path = tmp_path / "2024Q4.csv"
    path.write_text(header + body)
    return path


def test_a_good_file_reads_with_several_adjustments_per_segment(tmp_path):
    path = write(tmp_path, 'credit_card,25,"Unemployment above the scenario, per ALCO",J. Smith (CRO)\ncredit_card,-5.5,model limitation,CFO\n')
    overlays = read_overlay_file(path, SEGMENTS)
    assert overlays["adjustment_bp"].tolist() == [25.0, -5.5] and overlays["reason"].iloc[0] == "Unemployment above the scenario, per ALCO"
    assert overlays["approver"].tolist() == ["J. Smith (CRO)", "CFO"] and overlays["source_row"].tolist() == [2, 3]


@pytest.mark.parametrize(("row", "column", "reason"), [
    ("auto_loans,10,r,CRO", "segment", "unknown segment"),
    ("credit_card,,r,CRO", "adjustment_bp", "missing value"),
    ("credit_card,ten,r,CRO", "adjustment_bp", "not a number"),
    ("credit_card,inf,r,CRO", "adjustment_bp", "finite"),
    ("credit_card,10,,CRO", "reason", "missing value"),
    ("credit_card,10,r, ", "approver", "missing value"),
])
def test_each_bad_cell_is_refused_with_its_row_and_column(tmp_path, row, column, reason):
    path = write(tmp_path, f"credit_card,5,fine,CRO\n{row}\n")
    with pytest.raises(DropFileError) as info:
        read_overlay_file(path, SEGMENTS)
    message = str(info.value)
    assert "2024Q4.csv" in message and f"row 3, column '{column}'" in message and reason in message and "nothing was read" in message


def test_a_missing_column_is_named(tmp_path):
    with pytest.raises(DropFileError, match=r"missing required column.*approver"):
        read_overlay_file(write(tmp_path, "credit_card,5,r\n", header="segment,adjustment_bp,reason\n"), SEGMENTS)
