"""The policy's side of the walk-forward: the training-data guard and turning samples into forecasts."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cecl_pipeline.forecast.policy_samples import SampleSettings
from cecl_pipeline.forecast.walkforward import Checkpoint, forecast_quarter, policy_forecasts
from cecl_pipeline.grpo.provenance import assert_not_trained_on, trained_through, training_targets_through
from cecl_pipeline.llm.checkpoint import MANIFEST
from cecl_pipeline.panel.windows import LookaheadError


def checkpoint(tmp_path, name="member-0", **manifest):
    directory = tmp_path / name
    directory.mkdir()
    (directory / MANIFEST).write_text(json.dumps(manifest))
    return directory


def test_a_checkpoint_is_refused_on_every_quarter_whose_targets_it_trained_on(tmp_path):
    member = checkpoint(tmp_path, created_by="cecl_pipeline.grpo", quarter="2019Q3", trained_through="2019Q2")
    assert_not_trained_on(member, ["2019Q3", "2020Q1"])
    with pytest.raises(LookaheadError, match=r"up to 2019Q2.*2019Q1, 2019Q2 \(evaluate from 2019Q3 on\)"):
        assert_not_trained_on(member, ["2019Q1", "2019Q2", "2019Q3"])


def test_older_members_count_as_trained_up_to_the_quarter_before_theirs_and_converted_models_on_nothing(tmp_path):
    assert trained_through(checkpoint(tmp_path, "old", created_by="cecl_pipeline.grpo", quarter="2019Q3")) == "2019Q2"
    converted = checkpoint(tmp_path, "converted", dtype="float32")
    assert trained_through(converted) is None
    assert_not_trained_on(converted, ["1990Q1"])


def test_trained_through_is_the_latest_target_of_the_prompts_or_of_the_warm_start_base(tmp_path):
    files = []
    for quarter in ("2018Q4", "2019Q1"):
        files.append(tmp_path / f"{quarter}.parquet")
        pq.write_table(pa.table({"target_quarter": [quarter, quarter]}), files[-1])
    assert training_targets_through(files, checkpoint(tmp_path, "base", dtype="float32")) == "2019Q1"
    later_base = checkpoint(tmp_path, "later", created_by="cecl_pipeline.grpo", quarter="2019Q3", trained_through="2019Q2")
    assert training_targets_through(files, later_base) == "2019Q2"


def test_forecasting_a_quarter_the_policy_trained_on_fails_before_any_sampling(tmp_path):
    member = checkpoint(tmp_path, created_by="cecl_pipeline.grpo", quarter="2019Q3", trained_through="2019Q2")
    with pytest.raises(LookaheadError):
        # No prompts file and no weights exist: the guard must stop it first.
        forecast_quarter("2019Q2", tmp_path / "missing.parquet", [Checkpoint(member, "m")], "nco", SampleSettings(),
                         tmp_path / "f.parquet", tmp_path / "c.parquet")
    assert not (tmp_path / "f.parquet").exists() and not (tmp_path / "c.parquet").exists()


def test_point_is_the_median_across_members_of_their_sample_medians():
    examples = pd.DataFrame({"prompt_id": ["a", "b"], "entity_id": "e", "segment": "s", "target": [3.0, 1.0],
                             "history": [np.array([2.5]), np.array([1.2])]})
    parsed = {("a", 0): [1, 2, 3], ("a", 1): [4, np.nan, 6], ("b", 0): [np.nan] * 3, ("b", 1): [np.nan] * 3}
    samples = pd.DataFrame([{"prompt_id": p, "member": m, "sample": s, "parsed": v}
                            for (p, m), values in parsed.items() for s, v in enumerate(values)])
    rows = policy_forecasts(examples, samples, "2019Q3").set_index("prompt_id")
    assert rows.loc["a", "point"] == pytest.approx(3.5)  # member medians 2 and 5
    assert rows.loc["a", "q50"] == pytest.approx(3.0)  # pooled 1, 2, 3, 4, 6
    assert rows.loc["a", "parse_rate"] == pytest.approx(5 / 6)
    assert rows.loc["a", "last"] == 2.5 and rows.loc["a", "model"] == "grpo_policy"
    assert np.isnan(rows.loc["b", "point"]) and np.isnan(rows.loc["b", "crps"]) and rows.loc["b", "parse_rate"] == 0
