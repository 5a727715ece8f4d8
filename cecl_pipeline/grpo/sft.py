"""Supervised warm-start before GRPO: teach the policy the answer format on prompt → realised rate.

A randomly initialised model never writes a parseable ``<answer>`` tag, so every completion in a
group earns the same penalty, every advantage is 0 and RL has nothing to learn from. A few hundred
steps of next-token training on ``<answer>{target}</answer><|im_end|>`` after each training prompt
(targets dated before the policy's quarter only: the same rows GRPO trains on) gives RL answers that
parse and differ, so groups carry signal.

The batch order comes from a seeded ``PromptCursor``, so the warm-start is reproducible; it is short
and deterministic, so a run that crashes during it simply does it again. It ends early once the
answers are learned (``stop_loss``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import jax
import numpy as np
import optax

from cecl_pipeline.envs.answer import AnswerFormat
from cecl_pipeline.grpo.data import CursorState, PromptCursor, PromptSet
from cecl_pipeline.grpo.knobs import default
from cecl_pipeline.grpo.logprobs import sft_loss
from cecl_pipeline.grpo.optim import OptimizerConfig, make_optimizer
from cecl_pipeline.llm.config import Qwen3Config

STOP_WINDOW = 10  # steps whose mean loss decides an early stop: one batch's loss is noisy


@dataclass(frozen=True)
class SFTConfig:
    steps: int = default("sft.steps")  # 0 turns the warm-start off
    batch_size: int = default("sft.batch_size")
    learning_rate: float = default("sft.learning_rate")
    stop_loss: float = default("sft.stop_loss")  # end once the mean loss of the last STOP_WINDOW steps is below; 0: never
    warmup_steps: int = 10

    def optimizer(self) -> OptimizerConfig:
        return OptimizerConfig(learning_rate=self.learning_rate, warmup_steps=min(self.warmup_steps, max(self.steps - 1, 0)),
                               total_steps=max(self.steps, 1), weight_decay=0.0)


@dataclass
class SFTData:
    """Prompt (left-padded) + answer + EOS (right-padded) per row, and the columns that score the answer."""

    sequences: np.ndarray  # [N, P + A] int32
    valid: np.ndarray  # [N, P + A] bool
    prompt_width: int  # P: the answer and its EOS follow


def sft_data(prompts: PromptSet, values: np.ndarray, answer: AnswerFormat, tokenizer, eos_id: int) -> SFTData:
    """Each prompt followed by its value (the target, or what the env imitates) written in ``answer``'s format, then EOS."""
    pad_id = tokenizer.pad_token_id
    answers = tokenizer([answer.render(v) for v in values], add_special_tokens=False)["input_ids"]
    width = max(len(a) for a in answers) + 1
    answer_tokens = np.full((len(answers), width), pad_id, np.int32)
    answer_valid = np.zeros((len(answers), width), bool)
    for row, ids in enumerate(answers):
        answer_tokens[row, : len(ids) + 1] = [*ids, eos_id]
        answer_valid[row, : len(ids) + 1] = True
    sequences = np.concatenate([prompts.tokens, answer_tokens], axis=1)
    valid = np.concatenate([prompts.valid, answer_valid], axis=1)
    return SFTData(sequences, valid, prompts.tokens.shape[1])


def warm_start(params, model_config: Qwen3Config, data: SFTData, config: SFTConfig, seed: int,
               on_step: Callable[[dict], None] = lambda metrics: None) -> tuple[object, int]:
    """Up to ``config.steps`` AdamW steps of answer-token NLL over shuffled minibatches; returns the new params and the steps run.

    It stops early once the answers are learned (the mean loss of the last ``STOP_WINDOW`` steps
    below ``config.stop_loss``): the combining envs' constant "no change" is learned in ~40 steps,
    and each further step costs seconds of a 10-minute default run. The losses are deterministic,
    so the step it stops at is too.
    """
    if config.steps <= 0:
        return params, 0
    optimizer = make_optimizer(config.optimizer())
    opt_state = optimizer.init(params)

    @jax.jit
    def update(params, opt_state, tokens, valid):
        loss, grads = jax.value_and_grad(sft_loss)(params, model_config, tokens, valid, data.prompt_width)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    cursor = PromptCursor(len(data.sequences), CursorState(seed=seed))
    losses: list[float] = []
    for step in range(1, config.steps + 1):
        started = time.perf_counter()
        rows = cursor.next(config.batch_size)
        params, opt_state, loss = update(params, opt_state, data.sequences[rows], data.valid[rows])
        losses.append(float(loss))
        learned = len(losses) >= STOP_WINDOW and float(np.mean(losses[-STOP_WINDOW:])) < config.stop_loss
        on_step({"sft_step": step, "sft_loss": losses[-1], "step_seconds": time.perf_counter() - started, "sft_learned": learned})
        if learned:
            return params, step
    return params, config.steps
