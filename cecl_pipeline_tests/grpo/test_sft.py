"""The supervised warm-start: what it trains on, that it learns the answer, that it stops once learned, and that it is reproducible."""

from dataclasses import replace

import jax
import numpy as np

from cecl_pipeline.envs.answer import AnswerFormat
from cecl_pipeline.grpo.data import PromptSet
from cecl_pipeline.grpo.sft import STOP_WINDOW, SFTConfig, sft_data, warm_start
from cecl_pipeline.llm.model import init_params
from cecl_pipeline.llm.prompt_tokens import tokenize_left_padded
from cecl_pipeline_tests.grpo.test_trainer import MODEL, tokenizer

PROMPTS = [f"Segment: credit_card\nEntity: BANK_{i:04d}\nlast rate {1 + i / 10:.2f}. <answer>" for i in range(6)]
TARGETS = np.array([1.25, 0.5, 3.0, 2.75, 0.125, 4.0])


def data(tmp_path_factory):
    tok = tokenizer(tmp_path_factory.getbasetemp() / "trainer-tokenizer")
    tokens, valid = tokenize_left_padded(PROMPTS, tok, 48, tok.pad_token_id)
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    return tok, eos, sft_data(PromptSet(tokens, valid, TARGETS, np.ones(len(TARGETS)), np.zeros(len(TARGETS))), TARGETS, AnswerFormat(), tok, eos)


def test_only_the_answer_and_its_eos_are_trained_on(tmp_path_factory):
    tok, eos, d = data(tmp_path_factory)
    for row, target in enumerate(TARGETS):
        assert d.prompt_width == 48
        scored = d.sequences[row, 48:][d.valid[row, 48:]]  # sft_loss scores the valid tokens after the prompt
        assert scored[-1] == eos and tok.decode(scored[:-1].tolist()) == AnswerFormat().render(target)
        assert d.valid[row, :48].sum() == len(tok(PROMPTS[row], add_special_tokens=False)["input_ids"])


def test_warm_start_lowers_the_answer_loss_and_is_reproducible(tmp_path_factory):
    _, _, d = data(tmp_path_factory)
    params = init_params(MODEL, 0)
    config = SFTConfig(steps=12, batch_size=6, learning_rate=3e-3, warmup_steps=0, stop_loss=0.0)
    losses = []
    first, steps = warm_start(params, MODEL, d, config, seed=1, on_step=lambda m: losses.append(m["sft_loss"]))
    again, _ = warm_start(params, MODEL, d, config, seed=1)
    assert steps == len(losses) == 12 and losses[-1] < 0.5 * losses[0]
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(again), strict=True))
    assert warm_start(params, MODEL, d, SFTConfig(steps=0), seed=1) == (params, 0)


def test_warm_start_stops_once_the_mean_loss_of_the_last_ten_steps_is_below_stop_loss(tmp_path_factory):
    _, _, d = data(tmp_path_factory)
    params = init_params(MODEL, 0)
    losses = []
    full = SFTConfig(steps=30, batch_size=6, learning_rate=3e-3, warmup_steps=0, stop_loss=0.0)
    warm_start(params, MODEL, d, full, seed=1, on_step=lambda m: losses.append(m["sft_loss"]))
    means = np.array([np.mean(losses[i : i + STOP_WINDOW]) for i in range(len(losses) - STOP_WINDOW + 1)])  # steps i+1 … i+10
    middle = len(means) // 2
    threshold = float(np.sort(means)[middle - 1 : middle + 1].mean())  # reached part-way, and between two means, not on one
    expected = STOP_WINDOW + int(np.argmax(means < threshold))
    cut = []
    _, steps = warm_start(params, MODEL, d, replace(full, stop_loss=threshold), seed=1, on_step=lambda m: cut.append(m["sft_loss"]))
    assert STOP_WINDOW < steps == expected < 30
    assert cut == losses[:expected]  # the same run, cut short
