import numpy as np
import pandas as pd
import pytest

from cecl_pipeline.grpo.data import CursorState, PromptCursor, load_training_prompts, training_quarters_before
from cecl_pipeline.panel.windows import LookaheadError


def write_prompts(path, quarter, n=3):
    rows = [{"prompt_id": f"nco:B{i}:cards:{quarter}", "env": env, "entity_id": f"B{i}", "segment": "cards", "target_quarter": quarter,
             "history": [1.0] * 12, "target": float(i),
             "system": "analyst", "user": f"forecast {quarter} for B{i}", "prompt": f"analyst\n\nforecast {quarter} for B{i}"}
            for i in range(n) for env in ("nco", "nco_single")]
    pd.DataFrame(rows).to_parquet(path)
    return path


def test_loads_one_env_with_targets_before_the_quarter(tmp_path):
    paths = [write_prompts(tmp_path / f"{q}.parquet", q) for q in ("2018Q3", "2018Q4")]
    prompts = load_training_prompts(paths, "nco_single", "2019Q1")
    assert len(prompts) == 6 and set(prompts.env) == {"nco_single"}
    assert prompts.target_quarter.tolist() == ["2018Q3"] * 3 + ["2018Q4"] * 3


def test_a_target_at_or_after_the_quarter_is_refused(tmp_path):
    paths = [write_prompts(tmp_path / f"{q}.parquet", q) for q in ("2018Q4", "2019Q1")]
    with pytest.raises(LookaheadError, match="2019Q1"):
        load_training_prompts(paths, "nco", "2019Q1")
    assert training_quarters_before(["2018Q3", "2019Q1", "2018Q4", "2019Q2"], "2019Q1") == ["2018Q3", "2018Q4"]


def test_cursor_is_deterministic_covers_each_epoch_and_resumes_exactly():
    straight = PromptCursor(7, CursorState(seed=11))
    batches = [straight.next(3) for _ in range(6)]
    first_epoch = np.concatenate(batches)[:7]
    assert sorted(first_epoch.tolist()) == list(range(7))
    resumed = PromptCursor(7, CursorState(seed=11))
    [resumed.next(3) for _ in range(3)]
    again = PromptCursor(7, resumed.state)
    assert [again.next(3).tolist() for _ in range(3)] == [b.tolist() for b in batches[3:]]
    other = PromptCursor(7, CursorState(seed=12))
    assert np.concatenate([other.next(3) for _ in range(2)]).tolist() != np.concatenate(batches[:2]).tolist()
