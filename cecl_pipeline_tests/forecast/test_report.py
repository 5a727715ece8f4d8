"""The walk-forward report: tables, charts, markdown and HTML written whole, or not at all."""

import numpy as np
import pandas as pd
import pytest

from cecl_pipeline.forecast import charts
from cecl_pipeline.forecast.baselines import baseline_forecasts
from cecl_pipeline.forecast.metrics import metrics_table
from cecl_pipeline.forecast.report import build_report, read_forecasts
from cecl_pipeline.forecast.skill import SKILL_COLUMNS
from cecl_pipeline.quarters import quarter_range, shift

PNG = b"\x89PNG\r\n\x1a\n"


def quarter_forecasts(quarter: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    histories = [1.0 + np.cumsum(rng.normal(0, 0.1, 12)) for _ in range(6)]
    examples = pd.DataFrame({"prompt_id": [f"{quarter}-{i}" for i in range(6)], "entity_id": [f"bank{i % 3}" for i in range(6)],
                             "segment": ["card", "card", "card", "cre", "cre", "cre"],
                             "history_quarters": [quarter_range(shift(quarter, -12), shift(quarter, -1))] * 6,
                             "history": histories, "target": [h[-1] + rng.normal(0, 0.1) for h in histories]})
    baselines = baseline_forecasts(examples, quarter, ("persistence", "mean_4q", "ar1"))
    policy = baselines[baselines["model"] == "ar1"].assign(model="grpo_policy", point=lambda f: f["point"] + 0.05, parse_rate=0.75)
    return pd.concat([baselines, policy], ignore_index=True)


@pytest.fixture
def forecast_files(tmp_path):
    paths = []
    for i, quarter in enumerate(["2009Q3", "2009Q4", "2010Q1"]):
        paths.append(tmp_path / "wf" / quarter / "forecasts.parquet")
        paths[-1].parent.mkdir(parents=True)
        quarter_forecasts(quarter, i).to_parquet(paths[-1])
    return paths


def test_report_holds_the_tables_charts_and_headline(forecast_files, tmp_path):
    forecasts = read_forecasts(forecast_files)
    report = build_report(forecasts, tmp_path / "report", "Test report")
    assert report.quarters == ["2009Q3", "2009Q4", "2010Q1"]
    expected = metrics_table(forecasts).set_index("model")
    assert report.overall.set_index("model")["mae"].to_dict() == pytest.approx(expected["mae"].to_dict())
    assert report.stress["window"].unique().tolist() == ["GFC 2008Q1–2010Q4"]
    assert report.policy_parse_rate == pytest.approx(0.75)
    for path in report.charts.values():
        assert path.read_bytes().startswith(PNG)
    text = report.markdown_path.read_text()
    assert f"grpo_policy MAE {expected.loc['grpo_policy', 'mae']:.3f} pp" in text and "![MAE, model vs challengers](charts/mae.png)" in text
    assert text.count("data:image/png;base64,") == 0 and report.html_path.read_text().count("data:image/png;base64,") == 3
    metrics = pd.read_csv(report.directory / "metrics.csv")
    assert set(metrics["scope"]) == {"overall", "segment", "quarter", "stress"}
    assert set(SKILL_COLUMNS) | {"coverage_10_90_cal"} <= set(metrics.columns)
    assert f"vs best challenger {report.best_challenger} " in text and "Diebold–Mariano p" in text
    assert "## Calibration" in text and "## Policy vs best challenger by segment" in text


def test_any_challenger_can_be_the_best_and_the_policy_meets_it_segment_by_segment(forecast_files, tmp_path):
    forecasts = read_forecasts(forecast_files)
    persistence = forecasts[forecasts["model"] == "persistence"]
    comb = persistence.assign(model="comb", point=persistence["actual"] + 0.001)  # a new name, nearly exact
    report = build_report(pd.concat([forecasts, comb], ignore_index=True), tmp_path / "report", "with comb")
    assert report.best_challenger == "comb"
    assert set(report.by_segment["model"]) >= {"comb", "grpo_policy"}
    policy = forecasts[forecasts["model"] == "grpo_policy"]
    policy_mae = (policy["point"] - policy["actual"]).abs().groupby(policy["segment"]).mean()
    table = report.policy_vs_best.set_index("segment")
    assert table["policy_mae"].to_dict() == pytest.approx(policy_mae.to_dict())
    assert table["best_challenger_mae"].to_dict() == pytest.approx({"card": 0.001, "cre": 0.001})
    assert table["difference"].to_dict() == pytest.approx((policy_mae - 0.001).to_dict())
    overall = report.overall.set_index("model")
    assert overall.loc["grpo_policy", "share_beating_best"] == 0.0  # no series where the policy beats a 0.001 pp error
    assert overall.loc["grpo_policy", "best_challenger"] == "comb"


def test_forecast_files_written_before_the_scale_column_still_report(forecast_files, tmp_path):
    for path in forecast_files:
        pd.read_parquet(path).drop(columns="scale").to_parquet(path)
    report = build_report(read_forecasts(forecast_files), tmp_path / "report", "old files")
    policy = report.overall.set_index("model").loc["grpo_policy"]
    assert np.isnan(policy["mase"]) and np.isnan(policy["coverage_10_90_cal"])
    assert policy["rel_mae"] > 0 and report.calibration.empty
    assert "No row could be calibrated" in report.markdown_path.read_text()


def test_a_failed_rebuild_leaves_the_previous_report_whole(forecast_files, tmp_path, monkeypatch):
    directory = tmp_path / "report"
    build_report(read_forecasts(forecast_files[:1]), directory, "first")
    before = {p.relative_to(directory): p.read_bytes() for p in directory.rglob("*") if p.is_file()}

    def broken(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(charts, "mae_bars", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        build_report(read_forecasts(forecast_files), directory, "second")
    after = {p.relative_to(directory): p.read_bytes() for p in directory.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "wf"]  # no staging directory left behind


def test_no_forecasts_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="materialize walkforward_forecasts"):
        read_forecasts([])
