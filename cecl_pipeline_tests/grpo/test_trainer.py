"""The GRPO step on a tiny random Qwen3 with the locally trained tokenizer: learning, determinism, exact resume."""

import functools
import json
from dataclasses import replace

import jax
import numpy as np
import pytest

from cecl_pipeline.bootstrap.corpus import prompt_corpus
from cecl_pipeline.grpo.data import CursorState, PromptCursor, PromptSet
from cecl_pipeline.grpo.logprobs import completion_logprobs_jit
from cecl_pipeline.grpo.loss import GRPOLossConfig
from cecl_pipeline.grpo.metrics_log import JsonlLog, MetricsLog
from cecl_pipeline.grpo.optim import OptimizerConfig
from cecl_pipeline.grpo.rewards import ForecastReward
from cecl_pipeline.grpo.rollout import rollout
from cecl_pipeline.grpo.train_checkpoints import TrainCheckpoints
from cecl_pipeline.grpo.trainer import GRPOConfig, GRPOTrainer, train
from cecl_pipeline.llm.chat_template import ChatTemplate
from cecl_pipeline.llm.config import NAMED_CONFIGS
from cecl_pipeline.llm.model import init_params
from cecl_pipeline.llm.prompt_tokens import tokenize_left_padded
from cecl_pipeline.llm.tokenizer import build_tokenizer, save_hf_tokenizer

MODEL = NAMED_CONFIGS["tiny"].replace(num_hidden_layers=1, vocab_size=640)
CONFIG = GRPOConfig(groups_per_batch=2, group_size=4, ppo_minibatch=4, num_generation_tokens=8, inference_batch_per_device=8,
                    prompt_length=48, seed=7, optimizer=OptimizerConfig(learning_rate=1e-3, warmup_steps=0, total_steps=100))


@functools.cache
def tokenizer(tmp_root):
    save_hf_tokenizer(build_tokenizer(prompt_corpus(n_banks=2, every=16), vocab_size=640), tmp_root, model_max_length=256)
    return ChatTemplate(tmp_root).tokenizer


@pytest.fixture
def trainer(tmp_path_factory):
    tok = tokenizer(tmp_path_factory.getbasetemp() / "trainer-tokenizer")
    texts = [f"Segment: credit_card\nEntity: BANK_{i:04d}\nlast rate {1 + i / 10:.2f}. <answer>" for i in range(5)]
    tokens, valid = tokenize_left_padded(texts, tok, CONFIG.prompt_length, tok.pad_token_id)
    ids = tok.convert_tokens_to_ids(["<|im_end|>"])
    prompts = PromptSet(tokens, valid, np.linspace(1, 2, 5), np.full(5, 0.2), np.zeros(5))
    return lambda config=CONFIG, reference=None: GRPOTrainer(config, MODEL, prompts, tok, tuple(ids), ForecastReward(config=config.rewards),
                                                             reference_params=reference)


def first_two(t: GRPOTrainer) -> PromptSet:
    return t.prompts.take(np.arange(2))


def leaves_equal(a, b) -> bool:
    """Bitwise equality of two pytrees; typed PRNG keys compare by their key data."""
    as_data = lambda x: jax.random.key_data(x) if jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key) else x
    pairs = zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    return all(np.array_equal(as_data(x), as_data(y)) for x, y in pairs)


def test_updates_lower_the_loss_on_a_fixed_batch(trainer):
    t = trainer()
    state = t.init_state(init_params(MODEL, 0))
    batch = rollout(state["params"], MODEL, first_two(t), t.rollout_settings, t.reward, jax.random.key(0))
    batch.advantages = np.tile([1.0, -1.0, 0.5, -0.5], 2).astype(np.float32)  # a fixed learning signal
    rows = np.arange(8)
    params, opt_state, losses = state["params"], state["opt_state"], []
    for _ in range(6):
        params, opt_state, metrics = t.update(params, opt_state, batch.select(rows), None)
        losses.append(float(metrics["loss"]))
    assert losses[0] == pytest.approx(-0.0, abs=1e-6)  # ratio 1 at the start: the surrogate is −mean(A) = 0
    assert losses[-1] < losses[0] - 0.05


def test_one_update_per_rollout_takes_its_own_logprobs_as_the_old_ones(trainer):
    on_policy = replace(CONFIG, ppo_minibatch=8)
    t = trainer(on_policy)
    assert not t.reuses_rollouts and trainer().reuses_rollouts
    state = t.init_state(init_params(MODEL, 0))
    sample = lambda old: rollout(state["params"], MODEL, first_two(t), replace(t.rollout_settings, old_logprobs=old), t.reward,
                                 jax.random.key(0))
    skipped, recomputed = sample(False), sample(True)
    assert skipped.old_logprobs is None and recomputed.old_logprobs.shape == recomputed.mask.shape
    signal = np.tile([1.0, -1.0, 0.5, -0.5], 2).astype(np.float32)
    skipped.advantages = recomputed.advantages = signal
    rows = np.arange(8)
    with_own, _, own = t.update(state["params"], state["opt_state"], skipped.select(rows), None)
    with_recomputed, _, other = t.update(state["params"], state["opt_state"], recomputed.select(rows), None)
    assert float(own["ratio_mean"]) == 1.0  # exactly: new − stop_gradient(new)
    assert float(own["grad_norm"]) == pytest.approx(float(other["grad_norm"]), rel=1e-4) and float(own["grad_norm"]) > 0
    # Adam moves an element with a near-zero gradient by about ±lr (1e-3) whatever its size, so rounding
    # in the recomputed ratio can shift such an element by a fraction of lr; all others agree to ~1e-6.
    for a, b in zip(jax.tree.leaves(with_own), jax.tree.leaves(with_recomputed), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_same_seed_same_run_and_the_seed_drives_sampling(trainer):
    params = init_params(MODEL, 0)
    runs = [train(trainer(), params, steps=2) for _ in range(2)]
    assert leaves_equal(runs[0], runs[1])
    # A random model's completions never parse, so every reward ties and the params do not move yet
    # (why the SFT warm-start exists); what the seed must change is what gets sampled.
    t = trainer()
    state = t.init_state(params)
    sample = lambda seed: rollout(params, MODEL, first_two(t), t.rollout_settings, t.reward, jax.random.key(seed)).sequences
    assert np.array_equal(sample(1), sample(1)) and not np.array_equal(sample(1), sample(2))
    assert t.step(state, PromptCursor(5, CursorState(seed=7)))[1]["groups_with_signal"] == 0.0


def test_resume_from_a_checkpoint_is_exact(trainer, tmp_path):
    params = init_params(MODEL, 0)
    straight = train(trainer(), params, steps=4)
    with TrainCheckpoints(tmp_path / "run") as checkpoints:
        train(trainer(), params, steps=2, checkpoints=checkpoints)
    seen = []
    with TrainCheckpoints(tmp_path / "run") as checkpoints:
        resumed = train(trainer(), params, steps=4, checkpoints=checkpoints, on_step=lambda m: seen.append(m["step"]))
    assert seen == [3, 4]  # only the remaining steps ran
    assert leaves_equal(straight["params"], resumed["params"]) and leaves_equal(straight["opt_state"], resumed["opt_state"])


def test_a_kl_penalty_pulls_the_policy_toward_its_reference(trainer):
    with_kl = replace(CONFIG, loss=GRPOLossConfig(beta=0.5))
    start, reference = init_params(MODEL, 0), init_params(MODEL, 1)
    with pytest.raises(ValueError, match="reference_params"):
        trainer(with_kl)  # refused when built, before any work
    t = trainer(with_kl, reference)
    state, cursor = t.init_state(start), PromptCursor(5, CursorState(seed=7))
    assert t.step(state, cursor)[1]["kl"] > 0
    # One fixed batch whose rewards tie (a random policy's answers never parse): only the KL term moves the policy.
    prompts = first_two(t)
    batch = rollout(start, MODEL, prompts, t.rollout_settings, t.reward, jax.random.key(0))
    ref = np.asarray(completion_logprobs_jit(reference, MODEL, batch.sequences, batch.sequence_valid, prompts.tokens.shape[1], 4))
    rows, params, opt_state, kls = np.arange(8), start, state["opt_state"], []
    for _ in range(6):
        params, opt_state, metrics = t.update(params, opt_state, batch.select(rows), ref[rows])
        kls.append(float(metrics["kl_mean"]))
    assert not np.any(batch.advantages) and kls[-1] < 0.5 * kls[0]


def test_config_refuses_minibatches_that_split_groups_when_dropping():
    with pytest.raises(ValueError, match="whole groups"):
        GRPOConfig(groups_per_batch=2, group_size=4, ppo_minibatch=2, loss=GRPOLossConfig(drop_zero_advantage_groups=True))


def test_each_step_logs_the_metrics_the_run_log_needs(trainer, tmp_path):
    with MetricsLog(JsonlLog(tmp_path / "metrics.jsonl")) as log:
        train(trainer(), init_params(MODEL, 0), steps=2, on_step=log)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2]
    needed = {"reward_mean", "reward_std", "parse_rate", "mae", "kl", "clip_fraction", "entropy", "grad_norm", "learning_rate",
              "tokens_per_second", "step_seconds", "mfu"}
    assert needed <= set(lines[0]) and lines[0]["tokens_per_second"] > 0 and 0 < lines[1]["mfu"] < 1
