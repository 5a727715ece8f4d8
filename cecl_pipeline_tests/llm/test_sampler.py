"""The jitted KV-cache sampler: cache correctness, parity with transformers' greedy generate, filters, EOS, seeding."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cecl_pipeline.llm.model import Qwen3, positions_from_valid
from cecl_pipeline.llm.sampler import SamplingConfig, choose_token, sample
from cecl_pipeline_tests.llm.reference import GQA_CASES, left_padded_batch, our_config, our_params, reference_model

LENGTHS = [13, 5, 1, 8]  # odd, left-padded, a one-token prompt


@functools.cache
def tiny():
    """(config, params) of a random 2-layer GQA model with weights large enough that errors show."""
    reference = reference_model(2, False)
    return our_config(reference), our_params(reference)


def prompts(lengths=LENGTHS, seed=0):
    ids, valid = left_padded_batch(lengths, 512, seed)
    return jnp.asarray(ids, jnp.int32), jnp.asarray(valid)


def full_recompute_logits(config, params, result):
    """Logits of the whole prompt+completion without a cache; column j predicts token j+1."""
    valid = result.sequence_valid
    logits, _ = Qwen3(config).apply({"params": params}, result.sequences, positions_from_valid(valid), valid)
    return np.asarray(logits, np.float32)


def test_cached_decode_logits_equal_full_recompute():
    config, params = tiny()
    ids, valid = prompts()
    sampling = SamplingConfig(12, temperature=1.0, eos_token_ids=(2,))
    result = sample(params, config, ids, valid, sampling, jax.random.key(0), return_logits=True)
    full = full_recompute_logits(config, params, result)
    width, steps = ids.shape[1], sampling.max_new_tokens
    generated = np.arange(steps)[None, :] < np.asarray(result.lengths)[:, None]
    expected = full[:, width - 1 : width - 1 + steps]  # the logits each new token was drawn from
    assert np.abs(np.asarray(result.step_logits) - expected)[generated].max() < 1e-4
    log_probs = jax.nn.log_softmax(expected, axis=-1)
    chosen = np.take_along_axis(np.asarray(log_probs), np.asarray(result.tokens)[..., None], axis=-1)[..., 0]
    assert np.abs(np.asarray(result.logprobs) - chosen)[generated].max() < 1e-4




@pytest.mark.parametrize(("heads", "kv_heads", "tied"), GQA_CASES)
def test_greedy_matches_transformers_generate(heads, kv_heads, tied):
    check_greedy_parity(reference_model(kv_heads, tied, heads=heads), LENGTHS)


@pytest.mark.slow
@pytest.mark.parametrize("lengths", [[7], [11, 11], [2, 9, 3]], ids=["odd", "full", "short"])
@pytest.mark.parametrize(("heads", "kv_heads", "tied"), GQA_CASES)
def test_greedy_matches_transformers_generate_more_shapes(heads, kv_heads, tied, lengths):
    check_greedy_parity(reference_model(kv_heads, tied, heads=heads, seed=1), lengths)


def check_greedy_parity(reference, lengths, new_tokens=32):
    ids, valid = left_padded_batch(lengths, reference.config.vocab_size)
    with torch.no_grad():
        expected = reference.generate(input_ids=torch.tensor(ids), attention_mask=torch.tensor(valid.astype(np.int64)), do_sample=False,
                                      max_new_tokens=new_tokens, pad_token_id=0, eos_token_id=2).numpy()[:, ids.shape[1]:]
    sampling = SamplingConfig(new_tokens, temperature=0.0, eos_token_ids=(2,), pad_token_id=0)
    ours = np.asarray(sample(our_params(reference), our_config(reference), ids, valid, sampling, jax.random.key(0)).tokens)
    # generate stops when every row has finished; ours keeps the full width, padded.
    assert (ours[:, : expected.shape[1]] == expected).all()
    assert (ours[:, expected.shape[1] :] == 0).all()


FILTERS = [
    SamplingConfig(16, top_k=3),
    SamplingConfig(16, top_p=0.6),
    SamplingConfig(16, temperature=0.5, top_k=20, top_p=0.8),
    SamplingConfig(16, temperature=2.0, top_p=0.3),
]


def allowed(logits: np.ndarray, sampling: SamplingConfig, slack: float = 1e-5) -> np.ndarray:
    """[..., V] mask of the tokens top-k then top-p may return (ties at the cut included), in float64."""
    scores = logits.astype(np.float64) / sampling.temperature
    if sampling.top_k:
        kth = -np.sort(-scores, axis=-1)[..., sampling.top_k - 1 : sampling.top_k]
        scores = np.where(scores >= kth, scores, -np.inf)
    ranked = -np.sort(-scores, axis=-1)
    probs = np.exp(ranked - ranked[..., :1])
    probs /= probs.sum(axis=-1, keepdims=True)
    mass_before = np.cumsum(probs, axis=-1) - probs
    # The float32 cumulative sums may round the other way right at the cut: allow a hair more.
    kept = (mass_before < sampling.top_p + slack) & np.isfinite(ranked)
    cut = np.min(np.where(kept, ranked, np.inf), axis=-1, keepdims=True)
    return scores >= cut


@pytest.mark.parametrize("sampling", FILTERS, ids=lambda s: f"T{s.temperature}-k{s.top_k}-p{s.top_p}")
def test_filters_never_sample_outside_the_allowed_set(sampling):
    config, params = tiny()
    params = jax.tree_util.tree_map(lambda p: p * 1.5, params)  # sharper logits: small allowed sets
    ids, valid = prompts()
    for seed in range(6):
        # The allowed set comes from the logits the loop saw, which equal a full recompute's
        # (test above); the recompute's 1e-5 noise could move a token across the cut.
        result = sample(params, config, ids, valid, sampling, jax.random.key(seed), return_logits=True)
        mask = allowed(np.asarray(result.step_logits), sampling)
        tokens = np.asarray(result.tokens)
        assert np.take_along_axis(mask, tokens[..., None], axis=-1).all()
    assert (mask.sum(-1) < config.vocab_size).all()  # the filters did exclude something


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.5, 20.0), st.sampled_from(range(len(FILTERS))))
def test_choose_token_stays_inside_top_k_top_p(seed, sharpness, which):
    sampling = FILTERS[which]
    logits = np.random.default_rng(seed).normal(0, sharpness, (32, 300)).astype(np.float32)
    logits[:, :5] = logits[:, 5:10]  # exact ties at the cut must not break anything
    token, _, _ = jitted_choose(sampling)(jnp.asarray(logits), jax.random.key(seed))
    mask = allowed(logits, sampling)
    assert np.take_along_axis(mask, np.asarray(token)[:, None], axis=-1).all()


@functools.cache
def jitted_choose(sampling):
    return jax.jit(lambda logits, rng: choose_token(logits, rng, sampling))


@pytest.mark.parametrize("sampling", [SamplingConfig(1), SamplingConfig(1, top_p=0.7), SamplingConfig(1, temperature=0.5, top_k=4)],
                         ids=["plain", "top-p", "top-k"])
def test_choose_token_draws_from_the_right_distribution(sampling):
    """8,192 draws from one distribution over 300 tokens (several 64-wide cumsum blocks): frequencies within 5 sigma."""
    logits = np.random.default_rng(0).normal(0, 2, 300).astype(np.float32)
    token, _, sample_logprob = jitted_choose(sampling)(jnp.broadcast_to(jnp.asarray(logits), (8192, 300)), jax.random.key(1))
    scores = np.where(allowed(logits, sampling, slack=0.0), logits.astype(np.float64) / sampling.temperature, -np.inf)
    probs = np.exp(scores - scores.max())
    probs /= probs.sum()
    counts = np.bincount(np.asarray(token), minlength=300)
    assert (np.abs(counts - 8192 * probs) <= 5 * np.sqrt(8192 * probs * (1 - probs)) + 1).all()
    assert np.allclose(np.asarray(sample_logprob), np.log(probs[np.asarray(token)]), atol=1e-4)


def test_eos_stops_rows_independently_and_leaves_them_unchanged():
    config, params = tiny()
    ids, valid = prompts()
    free = sample(params, config, ids, valid, SamplingConfig(16, temperature=0.0), jax.random.key(0))
    tokens = np.asarray(free.tokens)
    eos = (int(tokens[0, 2]), int(tokens[2, 6]))  # two stop ids that rows hit at different steps
    stopped = sample(params, config, ids, valid, SamplingConfig(16, temperature=0.0, eos_token_ids=eos, pad_token_id=0), jax.random.key(0))
    hit = np.isin(tokens, eos)
    lengths = np.where(hit.any(1), hit.argmax(1) + 1, 16)
    assert lengths.min() < 16 and len(set(lengths)) > 1  # the case really has rows stopping at different steps
    assert (np.asarray(stopped.lengths) == lengths).all()
    before = np.arange(16)[None, :] < lengths[:, None]
    assert (np.asarray(stopped.tokens) == np.where(before, tokens, 0)).all()
    assert np.allclose(np.asarray(stopped.logprobs), np.where(before, np.asarray(free.logprobs), 0.0), atol=1e-5)
    assert (np.asarray(stopped.logprobs)[~before] == 0).all()
    assert (np.asarray(stopped.sequence_valid)[:, ids.shape[1] :] == before).all()


def test_all_rows_stopping_ends_the_loop_early_with_pads():
    config, params = tiny()
    ids, valid = prompts()
    first = np.asarray(sample(params, config, ids, valid, SamplingConfig(1, temperature=0.0), jax.random.key(0)).tokens)[:, 0]
    result = sample(params, config, ids, valid, SamplingConfig(20, temperature=0.0, eos_token_ids=tuple(first), pad_token_id=7),
                    jax.random.key(0))
    assert (np.asarray(result.lengths) == 1).all()
    assert (np.asarray(result.tokens)[:, 0] == first).all() and (np.asarray(result.tokens)[:, 1:] == 7).all()


def test_seeded_reproducible_and_max_new_tokens_respected():
    config, params = tiny()
    ids, valid = prompts()
    sampling = SamplingConfig(10, temperature=1.0, top_p=0.95)
    a, b = (sample(params, config, ids, valid, sampling, jax.random.key(3)) for _ in range(2))
    c = sample(params, config, ids, valid, sampling, jax.random.key(4))
    assert (np.asarray(a.tokens) == np.asarray(b.tokens)).all() and (np.asarray(a.logprobs) == np.asarray(b.logprobs)).all()
    assert (np.asarray(a.tokens) != np.asarray(c.tokens)).any()
    assert a.tokens.shape == a.logprobs.shape == (len(LENGTHS), 10)
    assert a.sequences.shape == (len(LENGTHS), ids.shape[1] + 10) and (np.asarray(a.lengths) == 10).all()
    assert (np.asarray(a.logprobs) < 0).all()


def test_each_step_draws_fresh_randomness():
    """White-box: plain sampling inverts the CDF in vocabulary order, so the token drawn at a step pins
    that step's uniform u to [mass before it, mass through it). A key reused across steps would give
    one u inside all 16 intervals; fresh keys leave no common point (the distributions are flat)."""
    config, params = tiny()
    flat = jax.tree_util.tree_map(lambda p: p * 0.3, params)
    ids, valid = prompts()
    result = sample(flat, config, ids, valid, SamplingConfig(16), jax.random.key(2), return_logits=True)
    probs = np.asarray(jax.nn.softmax(np.asarray(result.step_logits, np.float64), axis=-1))
    through = np.cumsum(probs, axis=-1)
    tokens = np.asarray(result.tokens)[..., None]
    low = np.take_along_axis(through - probs, tokens, axis=-1)[..., 0]
    high = np.take_along_axis(through, tokens, axis=-1)[..., 0]
    assert (low.max(axis=1) > high.min(axis=1)).all()


def test_top_k_one_is_greedy():
    config, params = tiny()
    ids, valid = prompts()
    greedy = sample(params, config, ids, valid, SamplingConfig(8, temperature=0.0), jax.random.key(0))
    top1 = sample(params, config, ids, valid, SamplingConfig(8, temperature=0.7, top_k=1), jax.random.key(5))
    assert (np.asarray(greedy.tokens) == np.asarray(top1.tokens)).all()
    assert np.allclose(np.asarray(greedy.logprobs), np.asarray(top1.logprobs), atol=1e-6)
    assert (np.asarray(top1.sample_logprobs) == 0).all()


def test_sampling_config_validates_and_hashes():
    with pytest.raises(ValueError):
        SamplingConfig(0)
    with pytest.raises(ValueError):
        SamplingConfig(4, top_p=0.0)
    assert SamplingConfig(4, eos_token_ids=[1, 2]) == SamplingConfig(4, eos_token_ids=(1, 2))
    assert hash(SamplingConfig(4, eos_token_ids=[1, 2])) == hash(SamplingConfig(4, eos_token_ids=(1, 2)))


def test_a_group_samples_as_its_repeated_prompts_do():
    """group_size=G (one prefill per prompt) draws what the prompts repeated G times draw, row for row."""
    config, params = tiny()
    ids, valid = prompts()
    sampling = SamplingConfig(12, temperature=1.0, eos_token_ids=(2,))
    grouped = sample(params, config, ids, valid, sampling, jax.random.key(6), return_logits=True, group_size=3)
    repeated = sample(params, config, np.repeat(ids, 3, 0), np.repeat(valid, 3, 0), sampling, jax.random.key(6), return_logits=True)
    assert grouped.tokens.shape == (3 * len(LENGTHS), 12)
    for field in ("tokens", "lengths", "sequences", "sequence_valid"):
        assert (np.asarray(getattr(grouped, field)) == np.asarray(getattr(repeated, field))).all(), field
    assert np.abs(np.asarray(grouped.step_logits) - np.asarray(repeated.step_logits)).max() < 1e-5
    assert len({tuple(row) for row in np.asarray(grouped.tokens)[:3]}) > 1  # a group's completions differ
