import numpy as np
import pandas as pd
import pytest

from cecl_pipeline.grpo.data import CursorState, PromptCursor, load_training_prompts, tokenize_left_padded, training_quarters_before
from cecl_pipeline.llm.chat_template import ChatTemplate
from cecl_pipeline.panel.windows import LookaheadError
from cecl_pipeline_tests.conftest import QWEN3_TOKENIZER


def write_prompts(path, quarter, n=3):
    rows = [{"prompt_id": f"nco:B{i}:cards:{quarter}", "env": env, "entity_id": f"B{i}", "segment": "cards", "target_quarter": quarter,
             "target": float(i), "system": "analyst", "user": f"forecast {quarter} for B{i}", "prompt": f"analyst\n\nforecast {quarter} for B{i}"} for i in range(n) for env in ("nco", "nco_single")]
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


def test_left_padding_and_refusal_of_long_prompts():
    tokenizer = ChatTemplate(QWEN3_TOKENIZER).tokenizer
    texts = ["1.25", "the rate 12.5"]
    tokens, valid = tokenize_left_padded(texts, tokenizer, width=10, pad_id=151643)
    for row, text in enumerate(texts):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokens[row, valid[row]].tolist() == ids and valid[row, -len(ids):].all() and not valid[row, : 10 - len(ids)].any()
        assert (tokens[row, ~valid[row]] == 151643).all()
    fitted, fitted_valid = tokenize_left_padded(texts, tokenizer, width=10, pad_id=151643, fit_multiple=4)
    longest = valid.sum(axis=1).max()
    assert longest < 8 and fitted.shape == (2, 8 if longest > 4 else 4)  # the longest prompt, rounded up to a multiple of 4
    assert (fitted[fitted_valid] == tokens[valid]).all()
    with pytest.raises(ValueError, match="exceed prompt_length 3 tokens.*p1"):
        tokenize_left_padded(texts, tokenizer, width=3, pad_id=0, ids=["p0", "p1"])


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
