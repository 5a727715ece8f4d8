"""Prompt text → left-padded token ids: padding, the fitted width, and the refusal of prompts that do not fit."""

import pytest

from cecl_pipeline.llm.chat_template import ChatTemplate
from cecl_pipeline.llm.prompt_tokens import tokenize_left_padded
from cecl_pipeline_tests.conftest import QWEN3_TOKENIZER


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
    with pytest.raises(ValueError, match=r"exceed prompt_length 3 tokens.*p1"):
        tokenize_left_padded(texts, tokenizer, width=3, pad_id=0, ids=["p0", "p1"])
