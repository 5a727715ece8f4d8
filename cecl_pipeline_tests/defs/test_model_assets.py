"""hf_checkpoint → jax_checkpoint on a real instance, checked against transformers on the same directory."""

import os
import subprocess
import sys

import dagster as dg
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, Qwen3ForCausalLM

from cecl_pipeline.defs.runs import run_assets
from cecl_pipeline.files import sha256_file
from cecl_pipeline.llm.checkpoint import load_jax_checkpoint
from cecl_pipeline.llm.model import Qwen3, positions_from_valid
from cecl_pipeline.settings import PROJECT_ROOT


@pytest.fixture
def checkpoints(tmp_path, monkeypatch):
    root = tmp_path / "checkpoints"
    monkeypatch.setenv("CECL_CHECKPOINT_DIR", str(root))
    return root


def metadata(result, asset):
    (materialization,) = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in materialization.metadata.items()}


def test_default_model_converts_and_matches_transformers(checkpoints, instance):
    result = run_assets(["hf_checkpoint", "jax_checkpoint"], None, instance)
    assert result.success
    hf, converted = metadata(result, "hf_checkpoint"), metadata(result, "jax_checkpoint")
    assert hf["parameters"] == converted["parameters"] == 4_197_120
    assert hf["dtype"] == "float32" and hf["source_sha256"] == converted["source_sha256"]

    hf_dir, jax_dir = hf["path"], converted["path"]
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    prompts = ["Segment: credit_card\nEntity: BANK_0001", "<answer>1.23</answer>"]
    batch = tokenizer(prompts, padding=True, padding_side="left", return_tensors="np")
    reference = Qwen3ForCausalLM.from_pretrained(hf_dir).eval()
    with torch.no_grad():
        expected = reference(input_ids=torch.tensor(batch["input_ids"]), attention_mask=torch.tensor(batch["attention_mask"])).logits.numpy()
    config, params = load_jax_checkpoint(jax_dir)
    valid = jnp.asarray(batch["attention_mask"].astype(bool))
    logits, _ = Qwen3(config).apply({"params": params}, jnp.asarray(batch["input_ids"]), positions_from_valid(valid), valid)
    assert np.abs(np.asarray(logits) - expected)[batch["attention_mask"].astype(bool)].max() < 1e-4


def test_default_model_is_reused_not_rewritten(checkpoints, instance):
    first = metadata(run_assets(["hf_checkpoint"], None, instance), "hf_checkpoint")
    weights = next(p for p in (checkpoints / "hf").rglob("model.safetensors"))
    stamp = (sha256_file(weights), weights.stat().st_mtime_ns)
    second = metadata(run_assets(["hf_checkpoint"], None, instance), "hf_checkpoint")
    assert first["source_sha256"] == second["source_sha256"]
    assert (sha256_file(weights), weights.stat().st_mtime_ns) == stamp


def test_a_configured_directory_that_is_not_qwen3_is_refused(checkpoints, instance, tmp_path):
    bad = tmp_path / "llama"
    bad.mkdir()
    (bad / "config.json").write_text('{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}')
    result = run_assets(["hf_checkpoint"], None, instance, run_config={"resources": {"models": {"config": {"hf_dir": str(bad)}}}})
    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert "config.json" in message and "llama" in message


@pytest.mark.slow
def test_dagster_cli_materializes_the_model_from_the_project_root(checkpoints, tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home")}
    os.makedirs(env["DAGSTER_HOME"])
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    command = [dagster, "asset", "materialize", "-m", "cecl_pipeline.definitions", "--select", "hf_checkpoint,jax_checkpoint"]
    done = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (checkpoints / "jax" / "cecl-tiny-seed0-float32" / "conversion.json").exists()
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        assert instance.get_latest_materialization_event(dg.AssetKey("jax_checkpoint")) is not None
