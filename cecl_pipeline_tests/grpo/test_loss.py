"""GRPO loss: advantages, clipped surrogate, k3 KL, aggregation modes, gradients, dropping, entropy."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from cecl_pipeline.grpo.loss import (
    GRPOLossConfig,
    group_advantages,
    grpo_loss,
    k3_kl,
    mean_token_entropy,
    token_entropy,
    zero_advantage_groups,
)

EPS = 1e-6
LN = math.log

# --- advantages --------------------------------------------------------------------------------


def test_std_advantages_hand_computed():
    # group 0: mean 0.5, population std sqrt(((.5)^2 * 4) / 4) = 0.5; group 1: all equal -> 0
    a = group_advantages(jnp.array([[1.0, 0, 0, 1], [2, 2, 2, 2]]))
    s = 0.5 / (0.5 + EPS)
    np.testing.assert_allclose(a, [s, -s, -s, s, 0, 0, 0, 0], rtol=1e-6)


def test_std_is_population_not_sample():
    # [0, 3]: mean 1.5, population std 1.5 -> ±1.5/1.5; the sample std 2.1213 would give ±0.7071
    a = group_advantages(jnp.array([0.0, 3.0]), 2)
    np.testing.assert_allclose(a, [-1.5 / (1.5 + EPS), 1.5 / (1.5 + EPS)], rtol=1e-6)


def test_no_std_scale_and_flat_input():
    a = group_advantages(jnp.array([1.0, 0, 0, 1, 2, 2, 2, 2]), 4, scale="none")
    np.testing.assert_allclose(a, [0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0])


def test_zero_advantage_groups_detected():
    flags = zero_advantage_groups(jnp.array([[1.0, 0, 0, 1], [2, 2, 2, 2]]))
    assert flags.tolist() == [False] * 4 + [True] * 4
    assert zero_advantage_groups(jnp.array([3.0, 3, 1, 3]), 2).tolist() == [True, True, False, False]


def test_equal_rewards_give_exact_zero_despite_rounding():
    # mean of three float32 0.1s is not exactly 0.1; divided by eps the residue would be ~0.01
    a = group_advantages(jnp.full((1, 3), 0.1))
    assert np.all(np.asarray(a) == 0.0)


@pytest.mark.parametrize("rewards, group_size", [(np.zeros(6), None), (np.zeros(6), 4), (np.zeros((2, 3)), 2)])
def test_bad_group_shapes_raise(rewards, group_size):
    with pytest.raises(ValueError):
        group_advantages(jnp.asarray(rewards), group_size)


# --- loss values -------------------------------------------------------------------------------
# Two sequences x 3 tokens, old log-probs 0, eps_low 0.2, eps_high 0.28.
#   seq 0, A = +2, mask [0, 1, 1]: t0 is prompt (NaN there must not matter),
#       t1 ratio 1.5 -> min(3.0, 1.28*2=2.56) = 2.56, clip binds high -> token loss -2.56
#       t2 ratio 1.1 -> min(2.2, 2.2)                                  -> token loss -2.2
#   seq 1, A = -1, mask [1, 1, 1]:
#       t0 ratio 0.5 -> min(-0.5, 0.8*-1=-0.8) = -0.8, clip binds low  -> token loss +0.8
#       t1 ratio 0.9 -> -0.9                                            -> token loss +0.9
#       t2 ratio 1.0 -> -1.0                                            -> token loss +1.0
#   sum = -2.56 - 2.2 + 0.8 + 0.9 + 1.0 = -2.06 over 5 tokens
MASK = jnp.array([[0.0, 1, 1], [1, 1, 1]])
NEW = jnp.array([[jnp.nan, LN(1.5), LN(1.1)], [LN(0.5), LN(0.9), 0.0]])
OLD = jnp.zeros((2, 3))
ADV = jnp.array([2.0, -1.0])


@pytest.mark.parametrize("config, expected", [
    (GRPOLossConfig(aggregation="token_mean"), -2.06 / 5),  # -0.412
    # per sequence: (-2.56 - 2.2) / 2 = -2.38 and (0.8 + 0.9 + 1.0) / 3 = 0.9; mean -0.74
    (GRPOLossConfig(aggregation="seq_mean_token_mean"), (-2.38 + 0.9) / 2),
    (GRPOLossConfig(aggregation="constant", constant_normalizer=4), -2.06 / (2 * 4)),  # -0.2575
    (GRPOLossConfig(aggregation="constant"), -2.06 / (2 * 3)),  # normalizer defaults to T = 3
])
def test_loss_hand_computed(config, expected):
    loss, m = grpo_loss(NEW, OLD, None, ADV, MASK, config)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    np.testing.assert_allclose(m["pg_loss"], expected, rtol=1e-5)
    assert float(m["kl_loss"]) == 0.0
    np.testing.assert_allclose(m["ratio_mean"], (1.5 + 1.1 + 0.5 + 0.9 + 1.0) / 5, rtol=1e-6)
    # t1 of seq 0 (high) and t0 of seq 1 (low) are clipped: 2 of 5 masked tokens
    np.testing.assert_allclose(
        [m["clip_fraction"], m["clip_fraction_high"], m["clip_fraction_low"]], [0.4, 0.2, 0.2], rtol=1e-6)


def test_kl_term_hand_computed():
    # ratio 1, A = 1: token loss -1 each. ref - new = ln 2 -> k3 = 2 - ln2 - 1 = 0.3069;
    # ref - new = -ln 2 -> k3 = 0.5 + ln2 - 1 = 0.1931; mean 0.5 / 2 = 0.25; loss -1 + 0.1 * 0.25
    new = jnp.zeros((1, 2))
    ref = jnp.array([[LN(2.0), -LN(2.0)]])
    np.testing.assert_allclose(k3_kl(new, ref, jnp.ones((1, 2))), [[1 - LN(2), LN(2) - 0.5]], rtol=1e-6)
    loss, m = grpo_loss(new, new, ref, jnp.array([1.0]), jnp.ones((1, 2)), GRPOLossConfig(beta=0.1))
    np.testing.assert_allclose(loss, -0.975, rtol=1e-6)
    np.testing.assert_allclose([m["kl_mean"], m["kl_loss"], m["pg_loss"]], [0.25, 0.025, -1.0], rtol=1e-6)


def test_beta_without_reference_raises():
    with pytest.raises(ValueError, match="ref_logprobs"):
        grpo_loss(NEW, OLD, None, ADV, MASK, GRPOLossConfig(beta=0.1))


@pytest.mark.parametrize("kwargs", [{"aggregation": "sum"}, {"advantage_scale": "mad"}, {"beta": -1.0},
                                    {"epsilon_low": 1.0}, {"constant_normalizer": 0}])
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        GRPOLossConfig(**kwargs)


# --- clip fraction -----------------------------------------------------------------------------


def test_clip_fraction_only_where_clip_binds():
    # out-of-range ratio counts only when the clipped term is the smaller one:
    #   A=+1: 1.5 binds (high), 0.5 does not (unclipped -0.5*... smaller), 1.0 does not
    #   A=-1: 0.5 binds (low), 1.5 does not, 1.0 does not
    #   A= 0: 1.5 and 0.5 never bind; last token masked out (ratio 3 would bind)
    ratios = jnp.array([[1.5, 0.5, 1.0], [0.5, 1.5, 1.0], [1.5, 0.5, 3.0]])
    mask = jnp.array([[1.0, 1, 1], [1, 1, 1], [1, 1, 0]])
    _, m = grpo_loss(jnp.log(ratios), jnp.zeros((3, 3)), None, jnp.array([1.0, -1.0, 0.0]), mask, GRPOLossConfig())
    np.testing.assert_allclose([m["clip_fraction"], m["clip_fraction_high"], m["clip_fraction_low"]],
                               [2 / 8, 1 / 8, 1 / 8], rtol=1e-6)


# --- gradients ---------------------------------------------------------------------------------


def test_gradient_hand_computed_token_mean():
    # token_mean over 5 tokens: unclipped token d/dlogp(-r*A/5) = -r*A/5; clipped or masked: 0
    grad = jax.grad(lambda new: grpo_loss(new, OLD, None, ADV, MASK, GRPOLossConfig())[0])(NEW)
    expected = [[0.0, 0.0, -1.1 * 2 / 5], [0.0, -0.9 * -1 / 5, -1.0 * -1 / 5]]
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7)


def test_gradient_hand_computed_with_kl():
    # d k3/d new = 1 - exp(ref - new): -1 at ln2, +0.5 at -ln2; times beta / 2 tokens = 0.05
    # policy part: -r*A/2 = -0.5 per token
    ref = jnp.array([[LN(2.0), -LN(2.0)]])
    f = lambda new: grpo_loss(new, jnp.zeros((1, 2)), ref, jnp.array([1.0]), jnp.ones((1, 2)),
                              GRPOLossConfig(beta=0.1))[0]
    np.testing.assert_allclose(jax.grad(f)(jnp.zeros((1, 2))), [[-0.5 - 0.05, -0.5 + 0.025]], rtol=1e-5)


def random_case(seed=8, n=6, t=5):  # seed 8: no ratio within 0.02 of a clip kink
    k = jax.random.split(jax.random.key(seed), 4)
    old = -jax.random.uniform(k[0], (n, t), minval=0.5, maxval=3.0)
    new = old + 0.3 * jax.random.normal(k[1], (n, t))  # some ratios beyond 1.28 / below 0.8
    ref = old + 0.2 * jax.random.normal(k[2], (n, t))
    adv = jnp.array([1.0, -0.5, 0.0, 0.0, 2.0, -1.0])[:n]  # group 1 (G=2) is all zero
    mask = (jax.random.uniform(k[3], (n, t)) > 0.3).astype(jnp.float32).at[:, 0].set(1.0)
    return new, old, ref, adv, mask


@pytest.mark.parametrize("config", [
    GRPOLossConfig(beta=0.05),
    GRPOLossConfig(aggregation="seq_mean_token_mean", beta=0.05, drop_zero_advantage_groups=True),
    GRPOLossConfig(aggregation="constant", constant_normalizer=7, beta=0.05),
])
def test_gradient_matches_finite_differences(config):
    new, old, ref, adv, mask = random_case()
    ratios = np.exp(np.asarray(new - old))
    # finite differences need every ratio away from the clip kinks at 0.8 and 1.28
    assert np.min(np.abs(ratios[..., None] - np.array([0.8, 1.28]))) > 1e-2
    assert np.any(ratios > 1.28) and np.any(ratios < 0.8)
    f = lambda x: grpo_loss(x, old, ref, adv, mask, config, group_size=2)[0]
    check_grads(f, (new,), order=1, modes=["rev"], eps=1e-3, atol=1e-3, rtol=1e-2)
    grad = np.asarray(jax.grad(f)(new))
    assert np.all(grad[np.asarray(mask) == 0] == 0)


def test_jit_with_static_config_matches_eager():
    new, old, ref, adv, mask = random_case()
    config = GRPOLossConfig(beta=0.05, drop_zero_advantage_groups=True)
    jitted = jax.jit(grpo_loss, static_argnames=("config", "group_size"))
    eager_loss, eager_m = grpo_loss(new, old, ref, adv, mask, config, group_size=2)
    jit_loss, jit_m = jitted(new, old, ref, adv, mask, config=config, group_size=2)
    np.testing.assert_allclose(jit_loss, eager_loss, rtol=1e-6)
    np.testing.assert_allclose(jit_m["clip_fraction"], eager_m["clip_fraction"])


def test_padding_values_do_not_leak():
    # -inf / NaN on masked positions (e.g. padding) leave the loss and gradient finite and unchanged
    new, old, ref, adv, mask = random_case()
    dirty = lambda x: jnp.where(mask > 0, x, -jnp.inf)
    f = lambda x, o, r: grpo_loss(x, o, r, adv, mask, GRPOLossConfig(beta=0.05))[0]
    np.testing.assert_allclose(f(dirty(new), dirty(old), dirty(ref)), f(new, old, ref), rtol=1e-6)
    grad = jax.grad(f)(dirty(new), dirty(old), dirty(ref))
    assert np.all(np.isfinite(grad))


# --- dropping zero-advantage groups ------------------------------------------------------------
# rewards [[1, 0], [1, 1]] with scale "none" -> A = [0.5, -0.5, 0, 0]; group 1 has no signal.
# Per-row ratios 1.1, 1.2, 1.0, 1.0 (all unclipped); row lengths 3, 2, 1, 3 (T = 3).
#   row 0: -(1.1 * 0.5) = -0.55 per token x 3 = -1.65;  row 1: -(1.2 * -0.5) = 0.6 x 2 = 1.2;  rows 2, 3: 0
#   token sum -0.45; per-sequence means -0.55, 0.6, 0, 0 (sum 0.05)
DROP_ADV = group_advantages(jnp.array([[1.0, 0.0], [1.0, 1.0]]), scale="none")
DROP_NEW = jnp.log(jnp.array([1.1, 1.2, 1.0, 1.0]))[:, None] * jnp.ones((4, 3))
DROP_MASK = jnp.array([[1.0, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]])


@pytest.mark.parametrize("aggregation, kept_all, dropped", [
    ("token_mean", -0.45 / 9, -0.45 / 5),
    ("seq_mean_token_mean", 0.05 / 4, 0.05 / 2),
    ("constant", -0.45 / (4 * 10), -0.45 / (2 * 10)),
])
def test_drop_zero_advantage_groups_changes_normaliser(aggregation, kept_all, dropped):
    def run(drop):
        config = GRPOLossConfig(aggregation=aggregation, constant_normalizer=10, drop_zero_advantage_groups=drop)
        return grpo_loss(DROP_NEW, jnp.zeros((4, 3)), None, DROP_ADV, DROP_MASK, config, group_size=2)

    (loss_all, m_all), (loss_drop, m_drop) = run(False), run(True)
    np.testing.assert_allclose([loss_all, loss_drop], [kept_all, dropped], rtol=1e-5)
    assert (float(m_all["num_tokens"]), float(m_drop["num_tokens"])) == (9.0, 5.0)
    assert (float(m_all["num_sequences"]), float(m_drop["num_sequences"])) == (4.0, 2.0)


def test_drop_needs_group_size_and_all_dropped_is_zero():
    config = GRPOLossConfig(drop_zero_advantage_groups=True)
    with pytest.raises(ValueError, match="group_size"):
        grpo_loss(DROP_NEW, jnp.zeros((4, 3)), None, DROP_ADV, DROP_MASK, config)
    f = lambda x: grpo_loss(x, jnp.zeros((4, 3)), None, jnp.zeros(4), DROP_MASK, config, group_size=2)[0]
    assert float(f(DROP_NEW)) == 0.0
    assert np.all(np.asarray(jax.grad(f)(DROP_NEW)) == 0.0)


# --- property: at new == old the loss is minus the aggregated advantages -----------------------


@settings(max_examples=40, deadline=None)
@given(
    adv=st.lists(st.floats(-5, 5, width=32), min_size=4, max_size=4),
    bits=st.lists(st.booleans(), min_size=12, max_size=12),
    logp=st.lists(st.floats(-20, 0, width=32), min_size=12, max_size=12),
    aggregation=st.sampled_from(["token_mean", "seq_mean_token_mean", "constant"]),
)
def test_on_policy_loss_is_minus_aggregated_advantage(adv, bits, logp, aggregation):
    a, mask = np.array(adv, np.float32), np.array(bits, np.float32).reshape(4, 3)
    lp = jnp.asarray(np.array(logp, np.float32).reshape(4, 3))
    lengths = mask.sum(1)
    expected = {
        "token_mean": -(a * lengths).sum() / max(lengths.sum(), 1.0),
        "seq_mean_token_mean": -np.where(lengths > 0, a, 0.0).mean(),
        "constant": -(a * lengths).sum() / (4 * 3),
    }[aggregation]
    loss, m = grpo_loss(lp, lp, None, jnp.asarray(a), jnp.asarray(mask), GRPOLossConfig(aggregation=aggregation))
    np.testing.assert_allclose(loss, expected, rtol=1e-5, atol=1e-5)
    assert float(m["clip_fraction"]) == 0.0


# --- entropy -----------------------------------------------------------------------------------


def test_entropy_uniform_peaked_and_random():
    v = 16
    np.testing.assert_allclose(token_entropy(jnp.zeros((2, 3, v))), np.full((2, 3), LN(v)), rtol=1e-6)
    assert float(token_entropy(jnp.array([100.0] + [0.0] * (v - 1)))) < 1e-3
    logits = np.asarray(jax.random.normal(jax.random.key(1), (2, 3, v)) * 3, np.float64)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(token_entropy(jnp.asarray(logits, jnp.float32)), -(p * np.log(p)).sum(-1), rtol=1e-5)


def test_mean_token_entropy_respects_mask():
    # uniform rows have entropy ln V; the masked row holds NaN and must not count
    v = 8
    logits = jnp.zeros((2, 2, v)).at[1, 1].set(jnp.nan).at[1, 0, 0].set(100.0)
    mask = jnp.array([[1.0, 1.0], [1.0, 0.0]])
    np.testing.assert_allclose(mean_token_entropy(logits, mask), 2 * LN(v) / 3, rtol=1e-5)
