"""forward_forecasts and forward_scores materialized in process on a real instance, on the default tiny model.

The quarter after the origin has no accepted panel when the forecast is made; it is ingested
afterwards, and the forecast is then scored as written, without forward_forecasts running again.
"""

import os
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from cecl_pipeline.defs.forward_assets import FORWARD_CHALLENGERS
from cecl_pipeline.defs.runs import run_assets
from cecl_pipeline.files import sha256_file
from cecl_pipeline.grpo.policy_store import PolicyStore
from cecl_pipeline.panel.store import read_panel
from cecl_pipeline.panel.text_format import format_rate
from cecl_pipeline.settings import DataLayout
from cecl_pipeline_tests.defs.policy_inputs import MACRO_ENV, build_inputs, run_log, run_policy, store_scenarios_after, use_inputs

SAMPLES, HORIZON = 3, 2
FORWARD = {"ops": {"forward_forecasts": {"config": {"samples": SAMPLES, "horizon": HORIZON}}}}


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    root = build_inputs(tmp_path / "inputs", ["2019Q1", "2019Q2"])  # accepted panels end at 2019Q2
    PolicyStore(use_inputs(root, tmp_path / "checkpoints", monkeypatch))
    return DataLayout(root / "data")


def results() -> Path:
    return Path(os.environ["CECL_RESULTS_DIR"]) / "forward"


def materializations(instance, asset: str) -> int:
    return len(instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset)), limit=100).records)


def test_a_forecast_for_quarters_without_actuals_is_scored_once_they_land_without_being_remade(inputs, instance):
    assert not inputs.panel_parquet("2019Q3").exists()
    assert run_policy("2019Q3", instance).success  # trained on every target up to 2019Q2
    made = run_assets(["forward_forecasts"], "2019Q2", instance, run_config=FORWARD)
    assert made.success, run_log(instance, made)[-3000:]

    forecasts = pd.read_parquet(inputs.forward_parquet("2019Q2"))
    series = len(forecasts[["entity_id", "segment"]].drop_duplicates())
    assert sorted(forecasts["model"].unique()) == sorted(["grpo_policy", *FORWARD_CHALLENGERS])
    assert sorted(forecasts["quarter"].unique()) == ["2019Q3", "2019Q4"] and set(forecasts["origin"]) == {"2019Q2"}
    assert (forecasts.groupby(["model", "horizon"]).size() == series).all()
    paths = pd.read_parquet(inputs.forward_paths_parquet("2019Q2"))
    assert len(paths) == series * SAMPLES * HORIZON
    first, second = (paths[paths["horizon"] == h].set_index(["entity_id", "segment", "path"]).sort_index() for h in (1, 2))
    # From Q+2 on each path reads its own history; paths that reached the same one share a prompt, sampled once per path.
    assert (second.groupby("prompt_id")["model_input"].nunique() == 1).all()
    assert (second.groupby("prompt_id").size() <= SAMPLES).all() and (second.groupby("prompt_id")["completion"].size() >= 1).all()
    # Each path's Q+1 value (its parsed sample, or its last value where none parsed) is the last quarter of its Q+2 prompt.
    shown = "2019Q3: " + pd.Series(format_rate(v) for v in first["continued_at"]).to_numpy()
    assert all(line in prompt for line, prompt in zip(shown, second["model_input"], strict=True))
    policy = forecasts[forecasts["model"] == "grpo_policy"].set_index(["horizon", "entity_id", "segment"]).sort_index()
    parsed = paths.groupby(["horizon", "entity_id", "segment"])["value"].apply(lambda v: v.notna().mean()).sort_index()
    assert policy["parse_rate"].to_numpy() == pytest.approx(parsed.to_numpy())
    before = sha256_file(inputs.forward_parquet("2019Q2"))

    book_the_allowance_then_refuse_a_bad_portfolio(inputs, instance, forecasts)

    nothing_yet = run_assets(["forward_scores"], None, instance)
    assert nothing_yet.success, run_log(instance, nothing_yet)[-3000:]
    assert pd.read_parquet(results() / "scored.parquet").empty

    assert run_assets(["nco_panel"], "2019Q3", instance).success  # 2019Q3's actuals land
    scored_run = run_assets(["forward_scores"], None, instance)
    assert scored_run.success, run_log(instance, scored_run)[-3000:]
    assert materializations(instance, "forward_forecasts") == 1 and sha256_file(inputs.forward_parquet("2019Q2")) == before

    scored = pd.read_parquet(results() / "scored.parquet")
    assert set(scored["quarter"]) == {"2019Q3"} and len(scored) == series * (1 + len(FORWARD_CHALLENGERS))
    actual = read_panel(inputs.panel_parquet("2019Q3")).set_index(["entity_id", "segment"])["nco_rate"]
    keyed = scored.set_index(["entity_id", "segment"])
    assert (keyed["actual"] == actual.reindex(keyed.index)).all()
    written = forecasts[forecasts["quarter"] == "2019Q3"].set_index(["model", "entity_id", "segment"])["point"]
    pd.testing.assert_series_equal(scored.set_index(["model", "entity_id", "segment"])["point"].sort_index(), written.sort_index())
    metrics = pd.read_csv(results() / "scores.csv")
    assert set(metrics["horizon"]) == {1} and (metrics["n"] > 0).any()


def test_a_forward_forecast_without_the_next_quarters_policy_fails_clearly(inputs, instance):
    result = run_assets(["forward_forecasts"], "2019Q2", instance, run_config=FORWARD)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert "no grpo_policy for 2019Q3 (the policy trained on every target up to 2019Q2)" in failure.step_failure_data.user_failure_data.description


def book_the_allowance_then_refuse_a_bad_portfolio(layout: DataLayout, instance, forecasts: pd.DataFrame) -> None:
    """cecl_allowance[2019Q2] on a portfolio and overlays; then a portfolio with a negative balance is refused and nothing changes."""
    pools = forecasts[["entity_id", "segment"]].drop_duplicates().head(6).assign(amortized_cost=1000.0, remaining_life_quarters=6.0)
    layout.portfolio_csv("2019Q2").parent.mkdir(parents=True, exist_ok=True)
    pools.to_csv(layout.portfolio_csv("2019Q2"), index=False)
    segment = pools["segment"].iloc[0]
    layout.overlays_csv("2019Q2").parent.mkdir(parents=True)
    pd.DataFrame({"segment": [segment], "adjustment_bp": [50], "reason": ["model limitation"], "approver": ["CRO"]}).to_csv(
        layout.overlays_csv("2019Q2"), index=False)
    booked = run_assets(["cecl_allowance"], "2019Q2", instance)
    assert booked.success, run_log(instance, booked)[-3000:]
    (materialization,) = booked.asset_materializations_for_node("cecl_allowance")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    saved = pd.read_parquet(layout.allowance_dir("2019Q2") / "pools.parquet")
    assert len(saved) == 6 and (saved["model_allowance"] > 0).all() and metadata["pools"] == 6
    overlay = 50e-4 * 1000.0 * (pools["segment"] == segment).sum()
    assert metadata["overlays_total"] == pytest.approx(overlay)  # metadata rounds to the cent
    assert metadata["allowance"] == pytest.approx(saved["model_allowance"].sum() + overlay, abs=0.005)
    report = Path(os.environ["CECL_RESULTS_DIR"]) / "allowance" / "2019Q2"
    page = (report / "report.html").read_text()
    assert "model limitation" in page and "CRO" in page and "data:image/png;base64," in page and (report / "report.md").is_file()
    assert metadata["rolled_forward_from"] == "none (first booking)" and metadata["fan_chart"].startswith("![fan chart](data:image/png")
    before = sha256_file(layout.allowance_dir("2019Q2") / "pools.parquet")

    pools.assign(amortized_cost=[-5.0, *[1000.0] * 5]).to_csv(layout.portfolio_csv("2019Q2"), index=False)
    refused = run_assets(["cecl_allowance"], "2019Q2", instance)
    assert not refused.success
    (failure,) = refused.get_step_failure_events()
    said = failure.step_failure_data.user_failure_data.description
    assert "2019Q2.csv" in said and "row 2, column 'amortized_cost'" in said and "≥ 0" in said
    assert sha256_file(layout.allowance_dir("2019Q2") / "pools.parquet") == before


@pytest.mark.slow
def test_a_macro_env_forecasts_each_scenario_from_its_path_and_the_allowance_weights_them(inputs, instance):
    scenarios = store_scenarios_after(inputs, "2019Q2")  # both start 2019Q3, the quarter after the origin
    assert run_policy("2019Q3", instance, **MACRO_ENV).success
    made = run_assets(["forward_forecasts"], "2019Q2", instance, run_config=FORWARD)
    assert made.success, run_log(instance, made)[-3000:]
    keys = sorted(s.key for s in scenarios)
    forecasts = pd.read_parquet(inputs.forward_parquet("2019Q2"))
    assert sorted(forecasts["scenario"].unique()) == keys
    paths = pd.read_parquet(inputs.forward_paths_parquet("2019Q2"))
    for scenario in scenarios:
        first = paths[(paths["scenario"] == scenario.key) & (paths["horizon"] == 1)]
        line = f"Macro conditions in 2019Q3: unemployment_rate {scenario.path['unemployment_rate'].iloc[0]:.2f}, "
        assert first["model_input"].str.contains(line, regex=False).all()
        second = paths[(paths["scenario"] == scenario.key) & (paths["horizon"] == 2)]
        assert second["model_input"].str.contains(f"2019Q3 | [^\n]* | {scenario.path['unemployment_rate'].iloc[0]:.2f} |").all()

    portfolio = forecasts[["entity_id", "segment"]].drop_duplicates().head(4).assign(amortized_cost=1000.0, remaining_life_quarters=6.0)
    inputs.portfolio_csv("2019Q2").parent.mkdir(parents=True, exist_ok=True)
    portfolio.to_csv(inputs.portfolio_csv("2019Q2"), index=False)
    refused = run_assets(["cecl_allowance"], "2019Q2", instance)
    assert not refused.success
    (failure,) = refused.get_step_failure_events()
    assert f"no scenario weights for 2019Q2 at {inputs.scenario_weights_csv('2019Q2')}" in failure.step_failure_data.user_failure_data.description
    inputs.scenario_weights_csv("2019Q2").parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"scenario": keys, "weight": [0.6, 0.4]}).to_csv(inputs.scenario_weights_csv("2019Q2"), index=False)
    booked = run_assets(["cecl_allowance"], "2019Q2", instance)
    assert booked.success, run_log(instance, booked)[-3000:]
    saved = pd.read_parquet(inputs.allowance_dir("2019Q2") / "paths.parquet")
    by_scenario = saved.groupby("scenario")["loss_rate"].size()
    assert sorted(by_scenario.index) == keys and by_scenario.nunique() == 1
    (materialization,) = booked.asset_materializations_for_node("cecl_allowance")
    table = materialization.metadata["by_scenario"].value
    assert f"{keys[0]} (weight 0.6)" in table and f"{keys[1]} (weight 0.4)" in table and "weighted" in table
