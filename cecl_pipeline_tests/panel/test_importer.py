import pandas as pd
import pytest

from cecl_pipeline.envs.prompt_dataset import PromptRequest, build_prompt_dataset
from cecl_pipeline.files import sha256_file
from cecl_pipeline.panel.errors import DropFileError
from cecl_pipeline.panel.importer import detect_kind, import_history
from cecl_pipeline.panel.ingest import ingest_macro, ingest_quarter
from cecl_pipeline.panel.readers import read_panel_file
from cecl_pipeline.quarters import quarter_range
from cecl_pipeline_tests.conftest import SHARED_DATA

FRED_SA = SHARED_DATA / "fred_chargeoff_rates.csv"
FED_NSA = SHARED_DATA / "fed_chargeoff_rates_nsa.csv"
MACRO = SHARED_DATA / "frb_macro_history.csv"
SERIES = {"credit_card": "CORCCACBS", "commercial_real_estate": "CORCREXFACBS", "residential_mortgage": "CORSFRMACBS", "commercial_industrial": "CORBLACBS"}


def fred_download(tmp_path):
    """The SA reference series written back in FRED's CSV download layout (observation_date + series ids)."""
    long = pd.read_csv(FRED_SA)
    wide = long.pivot(index="quarter", columns="segment", values="nco_rate").rename(columns=SERIES)
    year, q = wide.index.str[:4], wide.index.str[-1].astype(int)
    wide.index = year + "-" + ((q - 1) * 3 + 1).map("{:02d}".format) + "-01"
    path = tmp_path / "fred.csv"
    wide.rename_axis("observation_date").reset_index().to_csv(path, index=False, na_rep=".")
    return path


def test_detects_the_three_formats(tmp_path):
    assert detect_kind(FRED_SA) == "long"
    assert detect_kind(MACRO) == "macro"
    assert detect_kind(fred_download(tmp_path)) == "fred"


def test_real_history_imports_validates_and_builds_2009q1_prompts(layout):
    sa = import_history(FRED_SA, layout)
    nsa = import_history(FED_NSA, layout)
    macro = import_history(MACRO, layout)
    assert (sa.rows, nsa.rows, macro.rows) == (568, 800, 200)
    assert sa.quarters[0] == "1985Q1" and sa.quarters[-1] == "2023Q2"
    assert ingest_macro(layout).accepted
    for quarter in quarter_range("2006Q1", "2009Q1"):
        result = ingest_quarter(layout, quarter)
        failed = [o.summary() for o in result.outcomes if not o.passed]
        assert result.accepted and not failed, failed
    prompts = build_prompt_dataset(layout, PromptRequest("2009Q1"))
    # 4 SA series + 8 NSA series, each with 12 full quarters of history before 2009Q1
    assert prompts.examples == 12 and len(prompts.gaps) == 0
    table = pd.read_parquet(prompts.path)
    card = table[(table.env == "nco") & (table.entity_id == "US_COMMERCIAL_BANKS_SA") & (table.segment == "credit_card")].iloc[0]
    expected = pd.read_csv(FRED_SA).set_index(["segment", "quarter"]).loc["credit_card", "nco_rate"]
    assert card.target == expected["2009Q1"]
    assert list(card.history) == expected.loc["2006Q1":"2008Q4"].tolist()
    assert f"2008Q4: {expected['2008Q4']:.2f}" in card.user


def test_fred_download_gives_the_same_rows_as_the_long_file(tmp_path, layout):
    import_history(fred_download(tmp_path), layout, entity_id="US_COMMERCIAL_BANKS_SA")
    from_fred = read_panel_file(layout.raw_nco_dir / "2009Q1.csv").drop(columns=["source_file", "source_row"])
    long = pd.read_csv(FRED_SA)
    expected = long[long.quarter == "2009Q1"].sort_values("segment").reset_index(drop=True)
    pd.testing.assert_series_equal(from_fred["nco_rate"], expected["nco_rate"], check_names=False)
    assert from_fred["segment"].tolist() == expected["segment"].tolist()


def test_fred_unknown_series_needs_a_mapping(tmp_path, layout):
    path = tmp_path / "fred.csv"
    path.write_text("observation_date,XYZ123\n2019-01-01,1.5\n")
    with pytest.raises(DropFileError, match="no segment for FRED series XYZ123"):
        import_history(path, layout)
    report = import_history(path, layout, series_segments={"XYZ123": "auto_loans"})
    assert report.quarters == ["2019Q1"]


def test_conflicting_reimport_is_refused_and_writes_nothing(tmp_path, layout):
    import_history(FRED_SA, layout)
    hashes = {p.name: sha256_file(p) for p in layout.raw_nco_dir.iterdir()}
    changed = pd.read_csv(FRED_SA)
    changed.loc[changed.quarter == "2009Q1", "nco_rate"] += 1.0
    changed.loc[len(changed)] = ["US_COMMERCIAL_BANKS_SA", "credit_card", "2023Q3", 4.0]  # a new quarter too
    path = tmp_path / "changed.csv"
    changed.to_csv(path, index=False)
    with pytest.raises(DropFileError, match="use --replace") as info:
        import_history(path, layout)
    assert "2009Q1" in str(info.value)
    assert {p.name: sha256_file(p) for p in layout.raw_nco_dir.iterdir()} == hashes
    import_history(path, layout, replace=True)
    assert read_panel_file(layout.raw_nco_dir / "2023Q3.csv")["nco_rate"].tolist() == [4.0]


def test_identical_reimport_is_idempotent(layout):
    import_history(FRED_SA, layout)
    hashes = {p.name: sha256_file(p) for p in layout.raw_nco_dir.iterdir()}
    import_history(FRED_SA, layout)
    assert {p.name: sha256_file(p) for p in layout.raw_nco_dir.iterdir()} == hashes
