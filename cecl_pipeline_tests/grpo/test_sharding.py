"""Sharding: the partition rule, and a 4-host-device training run that matches the 1-device run.

The multi-device check runs in a subprocess: ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` only
takes effect before jax initialises its backend, and in this pytest process other tests already have.
The child is this very module run as ``python -m cecl_pipeline_tests.grpo.test_sharding``; it prints JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from jax.sharding import PartitionSpec as P

from cecl_pipeline.grpo.sharding import param_partition_spec

ROOT = Path(__file__).resolve().parents[2]
STEPS = 3

# --- the rule (no devices needed) ----------------------------------------------------------------


@pytest.mark.parametrize("shape, fsdp, spec", [
    ((256, 512), 4, P(None, "fsdp")),  # largest dimension
    ((512, 256), 4, P("fsdp", None)),
    ((256, 256), 2, P("fsdp", None)),  # tie: the earlier dimension
    ((6, 4), 4, P(None, "fsdp")),  # largest (6) not divisible: the next largest that is
    ((7, 5), 4, P()),  # none divisible: replicated
    ((256,), 4, P()),  # 1-D: replicated
    ((256, 512), 1, P()),  # no fsdp axis to speak of
])
def test_param_partition_spec(shape, fsdp, spec):
    assert param_partition_spec(shape, fsdp) == spec


# --- 4 host devices, in a child process ----------------------------------------------------------


@pytest.fixture(scope="module")
def child_report() -> dict:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-m", "cecl_pipeline_tests.grpo.test_sharding"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_child_sees_four_devices(child_report):
    assert child_report["device_count"] == 4


@pytest.mark.parametrize("run", ["mesh_2x2", "mesh_1x4"])
def test_sharded_training_matches_one_device(child_report, run):
    single = child_report["single"]["losses"]
    assert len(single) == STEPS and single[0] > single[-1]  # it trained
    assert child_report[run]["losses"] == pytest.approx(single, abs=1e-5)
    assert child_report[run]["max_param_diff"] < 1e-5


@pytest.mark.parametrize("run, shard_shape", [("mesh_2x2", [128, 256]), ("mesh_1x4", [64, 256])])
def test_params_really_are_sharded(child_report, run, shard_shape):
    q = child_report[run]["q_proj"]
    assert "fsdp" in q["spec"]
    assert q["shape"] == [256, 256] and q["shard_shapes"] == [shard_shape] * 4
    assert child_report[run]["norm_spec"] == str(P())  # 1-D scales replicated
    assert child_report[run]["adam_mu_spec"] == q["spec"]  # optimizer state sharded like its parameter


def test_a_train_checkpoint_resumes_on_another_device_count(child_report):
    to_four, to_one = child_report["resume"]["one_to_four"], child_report["resume"]["four_to_one"]
    assert to_four["devices"] == 4 and "fsdp" in to_four["q_spec"]  # read straight into the new mesh's shardings
    assert to_one["devices"] == 1
    for restored in (to_four, to_one):
        assert restored["max_param_diff"] == 0.0 and restored["step"] == 5 and restored["cursor"] == {"seed": 0}


# --- the child -----------------------------------------------------------------------------------


def _child() -> dict:
    """Three optimizer steps on one device, on a 2×2 mesh and on a 1×4 mesh; losses and parameter gaps."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    jax.config.update("jax_default_matmul_precision", "highest")
    from cecl_pipeline.grpo.optim import OptimizerConfig, make_optimizer
    from cecl_pipeline.grpo.sharding import make_mesh, param_shardings, replicated, shard_batch, shard_params
    from cecl_pipeline.llm.config import NAMED_CONFIGS
    from cecl_pipeline.llm.model import Qwen3, init_params, positions_from_valid

    config = NAMED_CONFIGS["tiny"].replace(num_hidden_layers=2, vocab_size=256)
    model = Qwen3(config)
    # Adam divides by sqrt(v), so an entry whose gradient is float noise (sums that nearly cancel) moves
    # by up to ~lr whatever its sign: the parameter gap scales with lr (2.8e-5 at 1e-3, 2.8e-6 at 1e-4).
    optimizer = make_optimizer(OptimizerConfig(learning_rate=1e-4, warmup_steps=1, total_steps=10))
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, config.vocab_size, size=(8, 16)).astype(np.int32)
    valid = np.arange(16)[None, :] >= np.arange(8)[:, None]  # left padding of 0..7 tokens, so the mask matters
    batch = {"tokens": tokens, "valid": valid}

    def loss_fn(params, batch):
        """Masked mean next-token cross-entropy over the whole batch."""
        tokens, valid = batch["tokens"], batch["valid"]
        logits, _ = model.apply({"params": params}, tokens, positions_from_valid(valid), valid)
        logp = jax.nn.log_softmax(logits[:, :-1].astype(jnp.float32), axis=-1)
        token_logp = jnp.take_along_axis(logp, tokens[:, 1:, None], axis=-1)[..., 0]
        mask = (valid[:, 1:] & valid[:, :-1]).astype(jnp.float32)
        return -jnp.sum(token_logp * mask) / jnp.sum(mask)

    def step(params, opt_state, batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return jax.tree_util.tree_map(lambda p, u: p + u, params, updates), opt_state, loss

    def train(params, opt_state, batch, jitted):
        losses = []
        for _ in range(STEPS):
            params, opt_state, loss = jitted(params, opt_state, batch)
            losses.append(float(loss))
        return params, opt_state, losses

    params0 = init_params(config, seed=0)
    single_params, _, single_losses = train(params0, optimizer.init(params0), batch, jax.jit(step))
    report = {"device_count": jax.device_count(), "single": {"losses": single_losses}}

    for name, (data, fsdp) in {"mesh_2x2": (2, 2), "mesh_1x4": (1, 4)}.items():
        mesh = make_mesh(data, fsdp)
        params = shard_params(params0, mesh)
        opt_state = shard_params(optimizer.init(params), mesh)
        shardings = (param_shardings(params, mesh), param_shardings(opt_state, mesh), replicated(mesh))
        params, opt_state, losses = train(params, opt_state, shard_batch(batch, mesh), jax.jit(step, out_shardings=shardings))
        gaps = jax.tree_util.tree_map(lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b)))), params, single_params)
        q = params["layers_0"]["self_attn"]["q_proj"]["kernel"]
        mu = next(x for x in jax.tree_util.tree_leaves(opt_state, is_leaf=lambda x: hasattr(x, "mu")) if hasattr(x, "mu")).mu
        report[name] = {
            "losses": losses,
            "max_param_diff": max(jax.tree_util.tree_leaves(gaps)),
            "q_proj": {"spec": str(q.sharding.spec), "shape": list(q.shape),
                       "shard_shapes": [list(s.data.shape) for s in q.addressable_shards]},
            "norm_spec": str(params["norm"]["scale"].sharding.spec),
            "adam_mu_spec": str(mu["layers_0"]["self_attn"]["q_proj"]["kernel"].sharding.spec),
        }
    report["resume"] = _resume_across_device_counts(params0, optimizer)
    return report


def _resume_across_device_counts(params, optimizer) -> dict:
    """A train checkpoint saved on one device restores onto a 1×4 mesh, sharded, and one saved there back onto one device."""
    import tempfile

    import jax
    import numpy as np

    from cecl_pipeline.grpo.sharding import make_mesh, shard_params
    from cecl_pipeline.grpo.train_checkpoints import TrainCheckpoints

    mesh = make_mesh(1, 4)
    single = {"params": params, "opt_state": optimizer.init(params), "rng": jax.random.key(3), "step": 5}
    sharded = {**single, "params": shard_params(params, mesh), "opt_state": shard_params(single["opt_state"], mesh)}
    report = {}
    for name, (saved, template) in {"one_to_four": (single, sharded), "four_to_one": (sharded, single)}.items():
        with tempfile.TemporaryDirectory() as directory, TrainCheckpoints(directory) as checkpoints:
            checkpoints.save(5, saved, {"cursor": {"seed": 0}})
            restored, meta = checkpoints.restore(template)
        q = restored["params"]["layers_0"]["self_attn"]["q_proj"]["kernel"]
        gaps = jax.tree_util.tree_map(lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b)))), restored["params"], params)
        report[name] = {"q_spec": str(q.sharding.spec) if hasattr(q.sharding, "spec") else "single device",
                        "devices": len(q.sharding.device_set), "max_param_diff": max(jax.tree_util.tree_leaves(gaps)),
                        "step": int(restored["step"]), "cursor": meta["cursor"]}
    return report


if __name__ == "__main__":
    print(json.dumps(_child()))
