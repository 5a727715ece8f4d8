import pandas as pd
import pytest

from cecl_pipeline.bootstrap.corpus import prompt_corpus
from cecl_pipeline.envs.prompt_dataset import PromptRequest, build_prompt_dataset
from cecl_pipeline.llm.chat_template import ChatTemplate
from cecl_pipeline.llm.tokenizer import SPECIAL_TOKENS, build_tokenizer, save_hf_tokenizer, special_token_ids
from cecl_pipeline.panel.ingest import ingest_macro, ingest_quarter
from cecl_pipeline.quarters import quarter_range


@pytest.fixture(scope="module")
def corpus():
    return list(prompt_corpus())


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory, corpus):
    out = tmp_path_factory.mktemp("tokenizer")
    save_hf_tokenizer(build_tokenizer(corpus, vocab_size=4096), out, model_max_length=4096)
    return out


def test_training_is_deterministic_and_specials_come_first(corpus):
    first, second = build_tokenizer(corpus, 4096), build_tokenizer(corpus, 4096)
    assert first.to_str() == second.to_str()
    assert special_token_ids(first) == {t: i for i, t in enumerate(SPECIAL_TOKENS)}


def test_loads_through_the_same_path_as_qwen3_and_round_trips(tokenizer_dir, corpus):
    tokenizer = ChatTemplate(tokenizer_dir).tokenizer
    for text in corpus[:50]:
        assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    pieces = tokenizer.convert_ids_to_tokens(tokenizer("<answer>12.34</answer>")["input_ids"])
    assert [p for p in pieces if p.isdigit()] == ["1", "2", "3", "4"]  # one token per digit, as Qwen3
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token_id == 0


@pytest.mark.parametrize("thinking", [False, True])
def test_chat_template_has_qwen3s_layout(tokenizer_dir, thinking):
    template = ChatTemplate(tokenizer_dir, enable_thinking=thinking)
    (text,) = template.apply(["be brief"], ["forecast 2019Q1"])
    expected = "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nforecast 2019Q1<|im_end|>\n<|im_start|>assistant\n"
    assert text == expected + ("" if thinking else "<think>\n\n</think>\n\n")
    ids = template.tokenizer(text)["input_ids"]
    assert ids[0] == 1 and ids.count(2) == 2  # <|im_start|> and <|im_end|> are single special tokens


def test_prompt_dataset_renders_through_the_trained_tokenizer(synthetic_layout, tokenizer_dir):
    ingest_macro(synthetic_layout)
    for quarter in quarter_range("2016Q1", "2019Q1"):
        ingest_quarter(synthetic_layout, quarter)
    result = build_prompt_dataset(synthetic_layout, PromptRequest("2019Q1", tokenizer_dir=str(tokenizer_dir)))
    table = pd.read_parquet(result.path)
    template = ChatTemplate(tokenizer_dir)
    assert result.template_name.startswith(tokenizer_dir.name)
    assert table.prompt.head(3).tolist() == template.apply(table.system.head(3).tolist(), table.user.head(3).tolist())
