"""debug-nco: debug_rollouts[Q] on a real instance and through the CLI, scored exactly as training scores."""

import subprocess

import numpy as np
import pandas as pd
import pytest

from cecl_pipeline.defs.debug import debug_dir
from cecl_pipeline.defs.runs import run_assets
from cecl_pipeline.forecast.debug_rollouts import rollouts_markdown, summary_line
from cecl_pipeline.grpo.rewards import ForecastReward
from cecl_pipeline_tests.cecl_command import cecl
from cecl_pipeline_tests.defs.policy_inputs import build_inputs, run_log, use_inputs


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return build_inputs(tmp_path_factory.mktemp("debug-inputs"), ["2019Q1", "2019Q2"])


@pytest.fixture
def env(inputs, tmp_path, monkeypatch):
    return use_inputs(inputs, tmp_path / "checkpoints", monkeypatch)


def test_before_training_the_base_model_answers_and_each_answer_is_scored_as_in_training(env, instance):
    config = {"ops": {"debug_rollouts": {"config": {"prompts": 3, "samples": 4, "max_new_tokens": 12}}}}
    result = run_assets(["debug_rollouts"], "2019Q2", instance, run_config=config)
    assert result.success
    rollouts = pd.read_parquet(debug_dir("2019Q2") / "rollouts.parquet")
    assert len(rollouts) == 12 and rollouts["prompt_id"].nunique() == 3
    for row in rollouts.itertuples():
        expected = ForecastReward().score(row.completion, row.target)
        assert row.reward == pytest.approx(expected.total) and row.format_ok == expected.format_ok
    group_sums = rollouts.groupby("prompt_id")["advantage"].sum()
    assert np.allclose(group_sums, 0.0, atol=1e-4)  # advantages are centred within each group
    metadata = result.asset_materializations_for_node("debug_rollouts")[0].metadata
    assert "jax" in metadata["checkpoint"].value and "| prompt_id |" in metadata["rollouts"].value
    assert "debug_rollouts 2019Q2" in run_log(instance, result)


def debug_nco(*args: str) -> subprocess.CompletedProcess:
    return cecl("debug-nco", *args)


def test_debug_nco_prints_the_table_and_refuses_a_quarter_without_prompts(env):
    done = debug_nco("--first", "2019Q2", "--prompts", "2", "--samples", "2", "--max-new-tokens", "8")
    assert done.returncode == 0, done.stderr
    assert "| prompt_id | sample | target | parsed | reward | advantage | completion |" in done.stdout and "4 completions" in done.stdout

    refused = debug_nco("--first", "2019Q3", "--prompts", "2", "--samples", "2")
    assert refused.returncode == 1 and "no nco_prompts for 2019Q3" in refused.stdout


def test_the_table_cuts_long_completions_and_escapes_pipes():
    rollouts = pd.DataFrame({"prompt_id": ["a", "a"], "sample": [0, 1], "target": [1.0, 1.0], "parsed": [np.nan, 1.5],
                             "error": [np.nan, 0.5], "format_ok": [False, True], "reward": [-1.0, 0.7], "advantage": [-1.0, 1.0],
                             "completion": ["x|y" * 40, "<answer>1.5</answer>"]})
    table = rollouts_markdown(rollouts, completion_chars=10)
    assert "`x\\|yx\\|yx\\|yx…`" in table and "| a | 0 | +1.000 | — | -1.000 | -1.000 |" in table
    assert summary_line(rollouts).startswith("2 completions · parsed 50% · well-formed 50% · reward -0.150 ± 0.850 · MAE of parsed 0.500 pp")
