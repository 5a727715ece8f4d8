import pandas as pd
import pytest

from cecl_pipeline.panel.errors import DropFileError
from cecl_pipeline.panel.readers import read_macro_file, read_panel_file
from cecl_pipeline_tests.conftest import SHARED_DATA

HEADER = "entity_id,segment,quarter,nco_rate,loans\n"


def write(tmp_path, text: str | bytes, name="2019Q1.csv"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_reads_long_format_with_types_and_line_numbers(tmp_path):
    path = write(tmp_path, HEADER + "B1,cards,2019Q1,3.5,100\n\nB2,cards,2019q1,-0.1,\n")
    panel = read_panel_file(path)
    assert panel["nco_rate"].tolist() == [3.5, -0.1]
    assert panel["quarter"].tolist() == ["2019Q1", "2019Q1"]
    assert panel["loans"].isna().tolist() == [False, True]
    # the blank line 3 is skipped but line numbers stay those of the file
    assert panel["source_row"].tolist() == [2, 4]
    assert panel["source_file"].unique().tolist() == ["2019Q1.csv"]


def test_text_in_numbers_names_row_column_and_value(tmp_path):
    path = write(tmp_path, HEADER + "B1,cards,2019Q1,3.5,100\nB2,cards,2019Q1,abc,100\n")
    with pytest.raises(DropFileError) as info:
        read_panel_file(path)
    message = str(info.value)
    assert "2019Q1.csv" in message and "row 3" in message and "'nco_rate'" in message and "'abc'" in message


def test_nan_and_inf_are_numbers_left_to_the_checks(tmp_path):
    panel = read_panel_file(write(tmp_path, HEADER + "B1,cards,2019Q1,NaN,1\nB2,cards,2019Q1,inf,1\n"))
    assert panel["nco_rate"].isna().iloc[0] and panel["nco_rate"].iloc[1] == float("inf")


def test_missing_column_lists_what_the_file_has(tmp_path):
    with pytest.raises(DropFileError, match=r"missing required column\(s\) nco_rate; the file has: entity_id, segment, quarter"):
        read_panel_file(write(tmp_path, "entity_id,segment,quarter\nB1,cards,2019Q1\n"))


def test_non_utf8_names_line_and_column(tmp_path):
    path = write(tmp_path, HEADER.encode() + b"B1,cards,2019Q1,1.0,1\nCaf\xe9,cards,2019Q1,1.0,1\n")
    with pytest.raises(DropFileError) as info:
        read_panel_file(path)
    assert "not UTF-8" in str(info.value) and "row 3" in str(info.value) and "'entity_id'" in str(info.value)


@pytest.mark.parametrize(("content", "expected"), [(b"", "empty"), (HEADER.encode(), "no data rows")])
def test_empty_and_header_only(tmp_path, content, expected):
    with pytest.raises(DropFileError, match=expected):
        read_panel_file(write(tmp_path, content))


def test_truncated_parquet(tmp_path):
    good = tmp_path / "good.parquet"
    pd.DataFrame({"entity_id": ["B1"], "segment": ["c"], "quarter": ["2019Q1"], "nco_rate": [1.0]}).to_parquet(good)
    data = good.read_bytes()
    bad = write(tmp_path, data[: len(data) // 2], "2019Q1.parquet")
    with pytest.raises(DropFileError, match="not a readable Parquet file"):
        read_panel_file(bad)


def test_parquet_rows_are_one_based(tmp_path):
    path = tmp_path / "2019Q1.parquet"
    pd.DataFrame({"entity_id": ["B1", "B2"], "segment": ["c", "c"], "quarter": ["2019Q1", "2019Q1"], "nco_rate": [1.0, 2.0]}).to_parquet(path)
    assert read_panel_file(path)["source_row"].tolist() == [1, 2]


def test_errors_list_at_most_twenty_rows_and_count_the_rest(tmp_path):
    rows = "".join(f"B{i},cards,2019Q1,x{i},1\n" for i in range(30))
    with pytest.raises(DropFileError) as info:
        read_panel_file(write(tmp_path, HEADER + rows))
    assert len(info.value.offences) == 20
    assert "and 10 more" in str(info.value)


def test_real_macro_history_reads_every_quarter():
    macro = read_macro_file(SHARED_DATA / "frb_macro_history.csv")
    assert len(macro) == 200
    assert macro["quarter"].iloc[0] == "1976Q1" and macro["quarter"].iloc[-1] == "2025Q4"
    assert macro["bbb_yield"].isna().sum() == 51
