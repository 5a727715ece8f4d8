import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cecl_pipeline.envs.prompt_dataset import PromptRequest, build_prompt_dataset
from cecl_pipeline.envs.registry import ENVS
from cecl_pipeline.files import sha256_file
from cecl_pipeline.llm.chat_template import ChatTemplate
from cecl_pipeline.panel.ingest import ingest_macro, ingest_quarter
from cecl_pipeline.panel.prompts import build_prompts
from cecl_pipeline.panel.text_format import fixed, format_rate, rates
from cecl_pipeline.panel.windows import LookaheadError, Windows
from cecl_pipeline.quarters import quarter_range
from cecl_pipeline_tests.conftest import QWEN3_TOKENIZER


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=50))
def test_fixed_matches_python_formatting(values):
    expected = [f"{np.float64(v):.2f}" for v in np.rint(np.asarray(values) * 100) / 100]
    expected = ["0.00" if e == "-0.00" else e for e in expected]
    assert fixed(np.asarray(values)).to_pylist() == expected


def test_fixed_marks_missing_and_signs():
    assert fixed(np.array([np.nan, np.inf, 1.5, -0.004, 0.0]), signed=True).to_pylist() == ["n/a", "n/a", "+1.50", "0.00", "0.00"]


@pytest.fixture
def built(synthetic_layout):
    ingest_macro(synthetic_layout)
    for quarter in quarter_range("2016Q1", "2019Q1"):
        assert ingest_quarter(synthetic_layout, quarter).accepted
    return synthetic_layout


def test_dataset_is_byte_identical_for_identical_inputs(built):
    first = build_prompt_dataset(built, PromptRequest("2019Q1"))
    digest = sha256_file(first.path)
    first.path.unlink()
    assert sha256_file(build_prompt_dataset(built, PromptRequest("2019Q1")).path) == digest


def test_every_env_every_series_with_history_and_target(built):
    result = build_prompt_dataset(built, PromptRequest("2019Q1"))
    table = pd.read_parquet(result.path)
    keys = list(zip(table.env, table.entity_id, table.segment, strict=False))
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert result.examples == 8 * 4 and len(table) == len(ENVS) * 32
    assert sorted(table.env.unique()) == sorted(ENVS)
    row = table[table.env == "nco_single"].iloc[0]
    assert list(row.history_quarters) == quarter_range("2016Q1", "2018Q4")
    assert row.target_quarter == "2019Q1" and "<answer>" in row.user and "nothing else" in row.user
    # the target's value never appears as a history line
    assert "2019Q1:" not in row.user and "2019Q1 |" not in row.prompt


def test_enhanced_prompt_carries_changes_history_macro_and_the_target_quarters_macro_line(built):
    table = pd.read_parquet(build_prompt_dataset(built, PromptRequest("2019Q1", envs=("nco_enhanced",))).path)
    macro = pd.read_parquet(built.macro_parquet).set_index("quarter")
    user = table.iloc[0].user
    assert "qoq_change" in user and "mean_4q" in user and "unemployment_rate" in user
    assert "2018Q4 |" in user and f"| {macro.loc['2018Q4', 'unemployment_rate']:.2f} |" in user
    history_rows, target_line = user.split("2018Q4 |")[1].split("Macro conditions in 2019Q1: ")
    assert "2019Q1 |" not in user and f"{macro.loc['2019Q1', 'vix']:.2f}" not in history_rows
    # the realised macro of the target quarter, where a forward forecast shows the scenario's path; no rate of 2019Q1
    assert target_line.startswith(f"unemployment_rate {macro.loc['2019Q1', 'unemployment_rate']:.2f}, ")
    assert f"vix {macro.loc['2019Q1', 'vix']:.2f}\n" in target_line
    history = np.asarray(table.iloc[0].history)
    change = rates(np.array([history[-1] - history[-2]]), signed=True).to_pylist()[0]
    assert f"2018Q4 | {format_rate(history[-1])} | {change} |" in user


def test_macro_from_the_target_quarter_is_refused():
    windows = Windows("2019Q1", quarter_range("2016Q1", "2018Q4"), pd.DataFrame({"entity_id": ["A"], "segment": ["c"]}),
                      np.ones((1, 12)), np.ones(1), pd.DataFrame(), 0)
    macro = pd.DataFrame({"quarter": ["2018Q4", "2019Q1"], "unemployment_rate": [4.0, 4.1]})
    # a macro table that reaches the target quarter is fine: only the window's quarters are used
    build_prompts(windows, [ENVS["nco_enhanced"]], macro, macro_columns=("unemployment_rate",))
    windows.history_quarters = quarter_range("2016Q2", "2019Q1")
    with pytest.raises(LookaheadError):
        build_prompts(windows, [ENVS["nco_enhanced"]], macro, macro_columns=("unemployment_rate",))


@pytest.mark.parametrize("thinking", [False, True])
def test_real_qwen3_chat_template_matches_transformers(built, thinking):
    template = ChatTemplate(QWEN3_TOKENIZER, enable_thinking=thinking)
    table = pd.read_parquet(build_prompt_dataset(built, PromptRequest("2019Q1", tokenizer_dir=str(QWEN3_TOKENIZER), enable_thinking=thinking)).path)
    sample = table.sample(5, random_state=0)
    assert sample.prompt.tolist() == template.apply(sample.system.tolist(), sample.user.tolist())
    ending = "<|im_start|>assistant\n" + ("" if thinking else "<think>\n\n</think>\n\n")
    assert table.prompt.iloc[0].startswith("<|im_start|>system\n") and table.prompt.iloc[0].endswith(ending)


def test_qwen3_special_token_ids_are_the_documented_ones():
    tokenizer = ChatTemplate(QWEN3_TOKENIZER).tokenizer
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>")}
    assert ids == {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645, "<think>": 151667, "</think>": 151668}
