"""HF ⇄ JAX checkpoints against transformers itself: its saved checkpoints convert, ours load in it."""

import json
import shutil

import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file
from transformers import Qwen3ForCausalLM

from cecl_pipeline.files import TEMP_MARK
from cecl_pipeline.llm import convert
from cecl_pipeline.llm.checkpoint import MANIFEST, CheckpointError, load_jax_checkpoint
from cecl_pipeline.llm.config import Qwen3Config
from cecl_pipeline.llm.convert import ConversionError, describe_hf_dir, hf_to_jax, to_layout
from cecl_pipeline.llm.hf_export import write_hf_checkpoint, write_random_hf_checkpoint
from cecl_pipeline.llm.model import Qwen3, positions_from_valid
from cecl_pipeline_tests.conftest import QWEN3_TOKENIZER
from cecl_pipeline_tests.llm.reference import left_padded_batch, our_config, our_params, reference_model

LENGTHS = [9, 4, 1]
SMALL = Qwen3Config(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                    num_key_value_heads=1, head_dim=16, tie_word_embeddings=False)
Q_PROJ = "model.layers.0.self_attn.q_proj.weight"


def ours(config: Qwen3Config, params: dict, vocab: int) -> np.ndarray:
    ids, valid = left_padded_batch(LENGTHS, vocab)
    valid_j = jnp.asarray(valid)
    logits, _ = Qwen3(config).apply({"params": params}, jnp.asarray(ids), positions_from_valid(valid_j), valid_j)
    return np.asarray(logits, np.float32)[valid]


def theirs(model: Qwen3ForCausalLM) -> np.ndarray:
    ids, valid = left_padded_batch(LENGTHS, model.config.vocab_size)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(valid.astype(np.int64))).logits
    return logits.float().numpy()[valid]


def no_temp_left(parent) -> bool:
    return not any(TEMP_MARK in p.name or ".old-" in p.name for p in parent.iterdir())


@pytest.mark.parametrize(("tied", "shard_size"), [(True, None), (False, None), (True, "40KB"), (False, "40KB")],
                         ids=["tied", "untied", "tied-sharded", "untied-sharded"])
def test_a_checkpoint_transformers_saved_converts_and_matches_its_logits(tmp_path, tied, shard_size):
    reference = reference_model(2, tied)
    hf_dir = tmp_path / "hf"
    reference.save_pretrained(hf_dir, **({"max_shard_size": shard_size} if shard_size else {}))
    if shard_size:
        assert (hf_dir / "model.safetensors.index.json").is_file() and len(list(hf_dir.glob("*.safetensors"))) > 2
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(QWEN3_TOKENIZER / name, hf_dir / name)

    report = hf_to_jax(hf_dir, tmp_path / "jax")
    config, params = load_jax_checkpoint(tmp_path / "jax")

    assert config == our_config(reference)
    assert report.parameters == config.param_count() == sum(p.numel() for p in reference.parameters())
    assert report.source_sha256 == describe_hf_dir(hf_dir)["sha256"]
    assert ("lm_head" in params) is not tied
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        assert (tmp_path / "jax" / name).read_bytes() == (hf_dir / name).read_bytes()
    assert np.abs(ours(config, params, config.vocab_size) - theirs(reference)).max() < 1e-4


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_our_hf_export_loads_in_transformers_with_the_same_logits(tmp_path, tied):
    source = reference_model(2, tied, seed=1)  # only a source of std-0.1 weights; the check is our export
    config, params = our_config(source), our_params(source)
    write_hf_checkpoint(params, config, tmp_path / "hf", max_shard_bytes=60_000)
    assert len(list((tmp_path / "hf").glob("model-*.safetensors"))) > 2

    loaded = Qwen3ForCausalLM.from_pretrained(tmp_path / "hf").eval()

    assert np.abs(ours(config, params, config.vocab_size) - theirs(loaded)).max() < 1e-4


def test_random_default_checkpoint_is_complete_for_transformers_and_converts_to_the_same_model(tmp_path):
    write_random_hf_checkpoint(SMALL, tmp_path / "hf", seed=3)
    loaded, info = Qwen3ForCausalLM.from_pretrained(tmp_path / "hf", output_loading_info=True)
    assert not any(info.values()), info  # no missing, unexpected or mismatched weights
    hf_to_jax(tmp_path / "hf", tmp_path / "jax")
    config, params = load_jax_checkpoint(tmp_path / "jax")
    assert np.abs(ours(config, params, SMALL.vocab_size) - theirs(loaded.eval())).max() < 1e-4
    again = tmp_path / "again"
    write_random_hf_checkpoint(SMALL, again, seed=3)
    assert (again / "model.safetensors").read_bytes() == (tmp_path / "hf" / "model.safetensors").read_bytes()


def test_bfloat16_checkpoint_from_transformers_converts_bit_exactly(tmp_path):
    reference = reference_model(2, False).to(torch.bfloat16)
    reference.save_pretrained(tmp_path / "hf")
    hf_to_jax(tmp_path / "hf", tmp_path / "jax", dtype="bfloat16")
    config, params = load_jax_checkpoint(tmp_path / "jax")

    assert config.param_dtype == "bfloat16"
    source = reference.state_dict()
    for name, path in [(Q_PROJ, ("layers_0", "self_attn", "q_proj", "kernel")), ("model.norm.weight", ("norm", "scale")),
                       ("model.embed_tokens.weight", ("embed_tokens", "embedding")), ("lm_head.weight", ("lm_head", "kernel"))]:
        ours_array = params
        for key in path:
            ours_array = ours_array[key]
        assert ours_array.dtype == ml_dtypes.bfloat16
        bits = source[name].view(torch.int16).numpy()
        np.testing.assert_array_equal(ours_array.view(np.int16), bits.T if ours_array.ndim == 2 and name != "model.embed_tokens.weight" else bits)
    _, widened = load_jax_checkpoint(tmp_path / "jax", dtype="float32")
    np.testing.assert_array_equal(widened["norm"]["scale"], source["model.norm.weight"].float().numpy())


def test_our_bfloat16_export_is_read_by_transformers_bit_exactly(tmp_path):
    source = reference_model(2, True)
    params = our_params(source)
    write_hf_checkpoint(params, our_config(source), tmp_path / "hf", dtype="bfloat16")
    loaded = Qwen3ForCausalLM.from_pretrained(tmp_path / "hf", dtype=torch.bfloat16)
    expected = to_layout(params["layers_1"]["mlp"]["down_proj"]["kernel"], True, np.dtype(ml_dtypes.bfloat16))
    np.testing.assert_array_equal(loaded.state_dict()["model.layers.1.mlp.down_proj.weight"].view(torch.int16).numpy(), expected.view(np.int16))


@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("shape", [(70, 33), (1, 5), (64, 64)])
@pytest.mark.parametrize(("source", "target"), [("float32", "float32"), ("float32", "bfloat16"), ("bfloat16", "float32"), ("bfloat16", "bfloat16")])
def test_to_layout_is_a_cast_transpose_into_a_contiguous_array(shape, source, target, transpose):
    array = np.random.default_rng(0).standard_normal((shape[0], 2 * shape[1])).astype(convert.DTYPES[source])[:, ::2]  # strided view
    out = to_layout(array, transpose, convert.DTYPES[target])
    assert out.flags.c_contiguous and out.dtype == convert.DTYPES[target]  # save_file writes raw buffers, ignoring strides
    np.testing.assert_array_equal(out, (array.T if transpose else array).astype(convert.DTYPES[target]))


# ---- refusals: each names the file or tensor, and none reads tensor data ----

@pytest.fixture
def hf_dir(tmp_path, monkeypatch):
    """A valid small HF directory; convert.safe_open fails, proving refusals come from headers alone."""
    path = tmp_path / "hf"
    write_random_hf_checkpoint(SMALL, path, seed=0)
    monkeypatch.setattr(convert, "safe_open", lambda *a, **k: pytest.fail("tensor data read before validation finished"))
    return path


def resave(path, change):
    tensors = load_file(path / "model.safetensors")
    change(tensors)
    save_file(tensors, path / "model.safetensors")


def refused(hf_dir, *fragments):
    with pytest.raises(ConversionError) as err:
        hf_to_jax(hf_dir, hf_dir.parent / "out")
    for fragment in fragments:
        assert fragment in str(err.value)
    assert not (hf_dir.parent / "out").exists() and no_temp_left(hf_dir.parent)
    return str(err.value)


def test_refuses_a_directory_without_config(hf_dir):
    (hf_dir / "config.json").unlink()
    refused(hf_dir, str(hf_dir / "config.json"), "missing")


def test_refuses_a_directory_without_weights(hf_dir):
    (hf_dir / "model.safetensors").unlink()
    refused(hf_dir, "model.safetensors", "no weights")


def test_refuses_an_index_that_names_a_missing_shard(tmp_path):
    write_random_hf_checkpoint(SMALL, tmp_path / "hf", max_shard_bytes=20_000)
    shard = sorted((tmp_path / "hf").glob("model-*.safetensors"))[1]
    shard.unlink()
    refused(tmp_path / "hf", "model.safetensors.index.json", shard.name, "missing")


def test_refuses_another_architecture(hf_dir):
    config = json.loads((hf_dir / "config.json").read_text())
    (hf_dir / "config.json").write_text(json.dumps({**config, "model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    refused(hf_dir, "config.json", "'llama'")


def test_refuses_a_wrongly_shaped_tensor_naming_both_shapes(hf_dir):
    resave(hf_dir, lambda t: t.update({Q_PROJ: t[Q_PROJ][:16].copy()}))
    refused(hf_dir, "model.safetensors", Q_PROJ, "(16, 32)", "(32, 32)")


def test_refuses_unexpected_tensors_listing_them(hf_dir):
    resave(hf_dir, lambda t: t.update({"model.layers.0.self_attn.q_proj.bias": np.zeros(32, np.float32), "extra.scale": np.ones(3, np.float32)}))
    refused(hf_dir, "unexpected tensors", "extra.scale", "model.layers.0.self_attn.q_proj.bias")


def test_refuses_missing_tensors_listing_them(hf_dir):
    resave(hf_dir, lambda t: [t.pop("model.layers.1.mlp.up_proj.weight"), t.pop("lm_head.weight")])
    refused(hf_dir, "missing tensors", "model.layers.1.mlp.up_proj.weight", "lm_head.weight")


def test_a_tied_checkpoint_may_carry_lm_head_only_if_it_equals_the_embedding(tmp_path):
    tied = SMALL.replace(tie_word_embeddings=True)
    write_random_hf_checkpoint(tied, tmp_path / "hf")
    embedding = load_file(tmp_path / "hf" / "model.safetensors")["model.embed_tokens.weight"]
    resave(tmp_path / "hf", lambda t: t.update({"lm_head.weight": embedding.copy()}))
    hf_to_jax(tmp_path / "hf", tmp_path / "jax")
    assert "lm_head" not in load_jax_checkpoint(tmp_path / "jax")[1]

    different = embedding.copy()
    different[100, 3] += 1.0
    resave(tmp_path / "hf", lambda t: t.update({"lm_head.weight": different}))
    refused(tmp_path / "hf", "lm_head.weight", "differs from model.embed_tokens.weight")


def test_a_failed_conversion_leaves_an_existing_good_output_untouched(tmp_path, monkeypatch):
    write_random_hf_checkpoint(SMALL, tmp_path / "hf", seed=0)
    out = tmp_path / "jax"
    hf_to_jax(tmp_path / "hf", out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def crash(*_):
        raise RuntimeError("killed while copying the tokenizer")

    write_random_hf_checkpoint(SMALL, tmp_path / "hf", seed=1)
    monkeypatch.setattr(convert, "copy_side_files", crash)  # after orbax has written params/ into the staging dir
    with pytest.raises(RuntimeError):
        hf_to_jax(tmp_path / "hf", out)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert no_temp_left(tmp_path)
    monkeypatch.undo()
    assert hf_to_jax(tmp_path / "hf", out).source_sha256 != json.loads(before[out.joinpath(MANIFEST).relative_to(out)])["source_sha256"]


def test_loading_refuses_an_incomplete_directory(tmp_path):
    write_random_hf_checkpoint(SMALL, tmp_path / "hf")
    hf_to_jax(tmp_path / "hf", tmp_path / "jax")
    (tmp_path / "jax" / MANIFEST).unlink()
    with pytest.raises(CheckpointError, match=r"no conversion\.json"):
        load_jax_checkpoint(tmp_path / "jax")
