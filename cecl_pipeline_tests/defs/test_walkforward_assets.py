"""walkforward_forecasts and walkforward_report materialized in process on a real instance, on the default tiny model."""

import math
import os
from pathlib import Path

import pandas as pd
import pytest

from cecl_pipeline.challengers.names import CHALLENGERS
from cecl_pipeline.defs.runs import run_assets
from cecl_pipeline.files import sha256_file
from cecl_pipeline.grpo.knobs import default
from cecl_pipeline.grpo.policy_store import PolicyStore
from cecl_pipeline.settings import DataLayout
from cecl_pipeline_tests.defs.policy_inputs import build_inputs, run_log, run_policy, use_inputs

SAMPLES = 4


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return build_inputs(tmp_path_factory.mktemp("walkforward-inputs"), ["2019Q1", "2019Q2", "2019Q3"])


@pytest.fixture
def store(inputs, tmp_path, monkeypatch):
    return PolicyStore(use_inputs(inputs, tmp_path / "checkpoints", monkeypatch))


def forecast(quarter, instance):
    return run_assets(["walkforward_forecasts"], quarter, instance, run_config={"ops": {"walkforward_forecasts": {"config": {"samples": SAMPLES}}}})


def metadata_of(result, asset):
    (materialization,) = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in materialization.metadata.items()}


def test_one_quarter_forecast_with_its_audit_trail_then_the_report(store, inputs, instance):
    assert run_policy("2019Q3", instance, members=2).success
    result = forecast("2019Q3", instance)
    assert result.success, run_log(instance, result)[-3000:]
    layout = DataLayout(inputs / "data")
    prompts = pd.read_parquet(layout.prompts_parquet("2019Q3"))
    examples = prompts[prompts["env"] == default("grpo.env")]

    forecasts = pd.read_parquet(layout.forecasts_parquet("2019Q3"))
    assert sorted(forecasts["model"].unique()) == sorted(["grpo_policy", *CHALLENGERS])
    assert (forecasts.groupby("model").size() == len(examples)).all()
    policy = forecasts[forecasts["model"] == "grpo_policy"].set_index("prompt_id")
    assert policy["actual"].to_dict() == examples.set_index("prompt_id")["target"].to_dict()

    audit = pd.read_parquet(layout.completions_parquet("2019Q3"))
    assert len(audit) == len(examples) * SAMPLES * 2
    members = [Path(m["path"]) for m in store.read_manifest("2019Q3")["members"]]
    assert sorted(audit["model_id"].unique()) == [f"{store.root.name}/2019Q3/member-{k}" for k in (0, 1)]
    assert set(audit["checkpoint_hash"]) == {sha256_file(m / "conversion.json") for m in members}
    assert audit["model_input"].str.contains("<|im_start|>user", regex=False).all()  # what the model read, in its chat template
    parsed = audit.dropna(subset=["parsed"])
    assert parsed["completion"].str.contains("<answer>", regex=False).all()
    assert policy["parse_rate"].mean() == pytest.approx(audit["parsed"].notna().mean())

    metadata = metadata_of(result, "walkforward_forecasts")
    assert metadata["completions"] == len(audit) and "| grpo_policy |" in metadata["metrics"]

    report = run_assets(["walkforward_report"], None, instance)
    assert report.success, run_log(instance, report)[-3000:]
    metadata = metadata_of(report, "walkforward_report")
    assert metadata["quarters"] == "2019Q3–2019Q3 (1)"
    assert metadata["best_challenger"] in CHALLENGERS and metadata["best_challenger_mae"] >= 0
    assert math.isnan(metadata["policy_dm_pvalue"])  # one quarter: no test
    assert math.isnan(metadata["policy_coverage_10_90_cal"])  # no earlier quarter to calibrate on
    assert all(isinstance(metadata[f"policy_{name}"], float) for name in ("mae", "rel_mae", "mase", "gmrae", "coverage_10_90"))
    assert all(metadata[f"chart_{name}"].startswith(f"![{name}](data:image/png;base64,") for name in ("forecast_vs_actual", "directional_accuracy", "mae"))
    results = Path(os.environ["CECL_RESULTS_DIR"]) / "walkforward"
    assert Path(metadata["report"]) == results / "report.md" and (results / "charts" / "mae.png").is_file()

    again = forecast("2019Q3", instance)  # seeded: the same completions again
    assert again.success
    pd.testing.assert_frame_equal(pd.read_parquet(layout.completions_parquet("2019Q3")), audit)


def test_a_quarter_without_a_policy_fails_clearly(store, instance):
    result = forecast("2019Q2", instance)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert "no grpo_policy for 2019Q2" in failure.step_failure_data.user_failure_data.description


def test_the_report_without_any_forecast_fails_clearly(layout, instance):
    result = run_assets(["walkforward_report"], None, instance)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert "materialize walkforward_forecasts" in failure.step_failure_data.user_failure_data.description
