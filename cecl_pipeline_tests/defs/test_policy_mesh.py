"""grpo_policy through the asset on 4 forced host CPU devices: a data × fsdp mesh, and the same policy as on one device.

The training process is a Pipes subprocess, so XLA_FLAGS set here reach it before JAX starts there,
while this pytest process keeps its one device.
"""

import numpy as np
import pytest

from cecl_pipeline.grpo.policy_store import PolicyStore
from cecl_pipeline.llm.checkpoint import load_jax_checkpoint
from cecl_pipeline_tests.defs.policy_inputs import build_inputs, run_log, run_policy, use_inputs

FOUR_DEVICES = "--xla_force_host_platform_device_count=4"


def trained(instance, tmp_path, inputs, monkeypatch, name: str, xla_flags: str, **mesh):
    """Train grpo_policy[2019Q3] into its own checkpoint folder; its member-0 params and the run's log."""
    store = PolicyStore(use_inputs(inputs, tmp_path / name, monkeypatch))
    monkeypatch.setenv("XLA_FLAGS", xla_flags)
    result = run_policy("2019Q3", instance, steps=2, **mesh)
    log = run_log(instance, result)
    assert result.success, log[-3000:]
    (member,) = store.member_dirs("2019Q3")
    return load_jax_checkpoint(member, dtype="float32")[1], log


@pytest.mark.slow
def test_four_devices_train_the_same_policy_as_one(tmp_path, instance, monkeypatch):
    inputs = build_inputs(tmp_path / "inputs", ["2019Q1", "2019Q2"])
    single, single_log = trained(instance, tmp_path, inputs, monkeypatch, "one", "")
    sharded, sharded_log = trained(instance, tmp_path, inputs, monkeypatch, "four", FOUR_DEVICES, mesh_data=2)
    assert "mesh" not in single_log
    assert "training on a 2×2 (data × fsdp) mesh of 4 devices" in sharded_log
    one, four = dict(_leaves(single)), dict(_leaves(sharded))
    assert one.keys() == four.keys()
    gaps = {name: float(np.max(np.abs(np.asarray(one[name]) - np.asarray(four[name])))) for name in one}
    assert max(gaps.values()) < 1e-5, sorted(gaps.items(), key=lambda kv: -kv[1])[:3]


def _leaves(params, prefix=""):
    for key, value in params.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}/")
        else:
            yield f"{prefix}{key}", value
