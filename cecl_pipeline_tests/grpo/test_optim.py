"""Optimizer: schedule values, clipping before AdamW, MultiSteps accumulation, the weight-decay mask."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cecl_pipeline.grpo.optim import OptimizerConfig, learning_rate_at, learning_rate_schedule, make_optimizer, weight_decay_mask

# --- schedule ------------------------------------------------------------------------------------


def test_schedule_hand_computed():
    c = OptimizerConfig(learning_rate=1e-3, warmup_steps=9, total_steps=109, min_lr_ratio=0.1)
    assert learning_rate_at(c, 0) == pytest.approx(1e-4)  # lr * 1 / (9 + 1)
    assert learning_rate_at(c, 4) == pytest.approx(5e-4)  # lr * 5 / 10
    assert learning_rate_at(c, 9) == pytest.approx(1e-3)  # end of warmup: the peak
    # cosine over the 100 steps after warmup: the midpoint is halfway between peak and floor
    assert learning_rate_at(c, 59) == pytest.approx(1e-4 + (1e-3 - 1e-4) * 0.5)
    assert learning_rate_at(c, 34) == pytest.approx(1e-4 + 0.9e-3 * 0.5 * (1 + math.cos(math.pi * 0.25)))
    assert learning_rate_at(c, 109) == pytest.approx(1e-4)  # the floor at total_steps, and after
    assert learning_rate_at(c, 500) == pytest.approx(1e-4)


def test_schedule_without_warmup_starts_at_peak():
    c = OptimizerConfig(learning_rate=2e-5, warmup_steps=0, total_steps=10, min_lr_ratio=0.0)
    assert learning_rate_at(c, 0) == pytest.approx(2e-5)
    assert learning_rate_at(c, 5) == pytest.approx(1e-5)
    assert learning_rate_at(c, 10) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("bad", [dict(warmup_steps=10, total_steps=10), dict(learning_rate=0.0),
                                 dict(min_lr_ratio=1.5), dict(grad_accum_steps=0), dict(max_grad_norm=-1.0)])
def test_config_rejects_nonsense(bad):
    with pytest.raises(ValueError):
        OptimizerConfig(**bad)


# --- clipping ------------------------------------------------------------------------------------

PARAMS = {"w": jnp.array([[0.5, -0.25], [0.1, 0.3]]), "b": jnp.array([0.2, -0.1])}


def _run(opt, params, grads_seq):
    state = opt.init(params)
    for grads in grads_seq:
        updates, state = opt.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    return params


def _scaled(tree, factor):
    return jax.tree_util.tree_map(lambda x: x * factor, tree)


def test_clipping_bounds_the_gradient_before_adam():
    # A huge first gradient then an ordinary one: with clipping, the run equals plain AdamW fed the
    # clipped gradients; without clipping the huge gradient would swamp Adam's second moment.
    c = OptimizerConfig(learning_rate=1e-2, warmup_steps=0, total_steps=100, weight_decay=0.0, max_grad_norm=1.0)
    g1 = {"w": jnp.array([[3e6, -4e6], [0.0, 1e6]]), "b": jnp.array([2e6, 0.0])}
    g2 = {"w": jnp.array([[0.3, 0.1], [-0.2, 0.05]]), "b": jnp.array([-0.4, 0.2])}
    clip = lambda g: _scaled(g, min(1.0, 1.0 / float(optax.tree.norm(g))))
    plain = optax.adamw(learning_rate_schedule(c), weight_decay=0.0)
    # Adam's first update is scale-free, so the first steps agree whatever the clipping
    first = _run(make_optimizer(c), PARAMS, [g1])
    np.testing.assert_allclose(first["w"], _run(make_optimizer(c), PARAMS, [clip(g1)])["w"], atol=1e-7)

    ours = _run(make_optimizer(c), PARAMS, [g1, g2])
    expected = _run(plain, PARAMS, [clip(g1), clip(g2)])
    unclipped = _run(plain, PARAMS, [g1, g2])
    for k in PARAMS:
        np.testing.assert_allclose(ours[k], expected[k], atol=1e-7)
    assert float(jnp.max(jnp.abs(ours["b"] - unclipped["b"]))) > 1e-4  # the clip really changed the run


def test_no_clipping_when_disabled():
    c = OptimizerConfig(learning_rate=1e-2, warmup_steps=0, total_steps=100, weight_decay=0.0, max_grad_norm=None)
    g1 = {"w": jnp.full((2, 2), 1e6), "b": jnp.full((2,), 1e6)}
    g2 = {"w": jnp.full((2, 2), 0.1), "b": jnp.full((2,), -0.1)}
    plain = optax.adamw(learning_rate_schedule(c), weight_decay=0.0)
    np.testing.assert_allclose(_run(make_optimizer(c), PARAMS, [g1, g2])["b"], _run(plain, PARAMS, [g1, g2])["b"], atol=1e-7)


# --- accumulation --------------------------------------------------------------------------------


def test_multisteps_equals_one_step_on_the_mean_gradient():
    base = dict(learning_rate=1e-2, warmup_steps=2, total_steps=20, weight_decay=0.1, max_grad_norm=0.5)
    micro = [{"w": jnp.array([[1.0, -2.0], [0.5, 0.0]]), "b": jnp.array([0.3, 0.1])},
             {"w": jnp.array([[0.2, 0.4], [-1.5, 1.0]]), "b": jnp.array([-0.7, 0.9])}]
    mean = jax.tree_util.tree_map(lambda a, b: (a + b) / 2, *micro)

    accum = make_optimizer(OptimizerConfig(**base, grad_accum_steps=2))
    state = accum.init(PARAMS)
    updates, state = accum.update(micro[0], state, PARAMS)
    assert all(float(jnp.max(jnp.abs(u))) == 0.0 for u in jax.tree_util.tree_leaves(updates))  # no update yet
    updates, state = accum.update(micro[1], state, PARAMS)
    accumulated = optax.apply_updates(PARAMS, updates)

    single = _run(make_optimizer(OptimizerConfig(**base)), PARAMS, [mean])
    for k in PARAMS:
        np.testing.assert_allclose(accumulated[k], single[k], rtol=1e-6, atol=1e-8)
        assert not np.allclose(accumulated[k], PARAMS[k])


# --- weight decay mask ---------------------------------------------------------------------------


def _model_like_params():
    return {
        "embed_tokens": {"embedding": jnp.full((4, 3), 0.5)},
        "layers_0": {"input_layernorm": {"scale": jnp.ones(3)},
                     "self_attn": {"q_proj": {"kernel": jnp.full((3, 3), 0.5)}, "q_norm": {"scale": jnp.ones(3)}}},
        "norm": {"scale": jnp.ones(3)},
    }


def test_weight_decay_mask_names():
    mask = weight_decay_mask(_model_like_params())
    assert mask["layers_0"]["self_attn"]["q_proj"]["kernel"] is True
    assert mask["embed_tokens"]["embedding"] is False
    assert not mask["norm"]["scale"] and not mask["layers_0"]["input_layernorm"]["scale"]
    assert weight_decay_mask(_model_like_params(), decay_embeddings=True)["embed_tokens"]["embedding"] is True


@pytest.mark.parametrize("decay_embeddings", [False, True])
def test_zero_gradient_step_decays_only_kernels(decay_embeddings):
    c = OptimizerConfig(learning_rate=0.1, warmup_steps=0, total_steps=10, weight_decay=0.5, decay_embeddings=decay_embeddings)
    params = _model_like_params()
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    after = _run(make_optimizer(c), params, [zeros])
    shrink = 1 - 0.1 * 0.5  # decoupled decay: p -= lr * wd * p
    np.testing.assert_allclose(after["layers_0"]["self_attn"]["q_proj"]["kernel"], 0.5 * shrink, rtol=1e-6)
    for scale in (after["norm"]["scale"], after["layers_0"]["input_layernorm"]["scale"], after["layers_0"]["self_attn"]["q_norm"]["scale"]):
        np.testing.assert_array_equal(scale, 1.0)
    np.testing.assert_allclose(after["embed_tokens"]["embedding"], 0.5 * (shrink if decay_embeddings else 1.0), rtol=1e-6)
