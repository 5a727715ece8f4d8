"""Benchmark: our jitted KV-cache sampler against transformers' generate, side by side in one run.

Same model shape (the "tiny" Qwen3: hidden 256, 4 layers, 4/2 heads, head_dim 64, intermediate
768, vocab 4096) and the same weights in both; prompts of 128 tokens, 64 new tokens, EOS made
unreachable so both produce exactly 64; sampling with the same temperature/top-k/top-p. Goal from
the issue: ours >= 3x transformers' new tokens/s. Informative only: the script exits 0 either way.

    .venv/bin/python benchmarks/sampling.py                        # batch 16 and 64, plain sampling at temperature 1
    .venv/bin/python benchmarks/sampling.py --top-k 50 --top-p 0.95 --batch 16 --repeats 3
    python3 benchmarks/sampling.py --model qwen3-0.6b --dtype bfloat16 --no-reference   # the GPU figure (see RESULTS.md)

Decode GFLOP/s counts, per fed token, 2 x (non-embedding matmul weights + the V x E head) plus
attention 4 x layers x heads x head_dim x context (QK^T and weights·V over the real context, not
the padded cache), as ``cecl_pipeline.llm.flops.decode_flops`` does; the decode time is
t(64 new tokens) - t(1 new token), i.e. 63 decode steps. The matmul peak is
``flops.matmul_peak_flops()`` in the run's dtype, measured in the same run. Memory is the JAX device's
peak bytes in use where the backend reports it (GPU), else this process's peak RSS.

``--no-reference`` times ours alone, with random parameters from ``init_params``: for shapes or
dtypes the issue does not compare (a Qwen3-0.6B shape in bfloat16 on a GPU), and machines without torch.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax.traverse_util import unflatten_dict

from cecl_pipeline.llm.config import NAMED_CONFIGS, Qwen3Config
from cecl_pipeline.llm.flops import decode_flops, matmul_peak_flops
from cecl_pipeline.llm.model import init_params
from cecl_pipeline.llm.param_names import hf_to_flax
from cecl_pipeline.llm.sampler import SamplingConfig, sample

GOAL_RATIO = 3.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=0, help="0: off (GRPO samples from the plain policy)")
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each side, interleaved; the median is reported")
    parser.add_argument("--model", default="tiny", choices=sorted(NAMED_CONFIGS), help="the issue compares on tiny")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"), help="parameters and compute")
    parser.add_argument("--no-reference", dest="reference", action="store_false", help="time ours alone (no torch needed)")
    args = parser.parse_args(argv)
    if args.reference and args.dtype != "float32":
        parser.error("the transformers comparison runs float32 on both sides; add --no-reference for bfloat16")
    return args


def models(config: Qwen3Config):
    """A random transformers model with no reachable EOS, and the same weights as our params."""
    import torch
    from transformers import Qwen3Config as HFQwen3Config
    from transformers import Qwen3ForCausalLM

    torch.set_num_threads(os.cpu_count() or 1)  # a fair anchor: transformers gets every core, as XLA does
    hf = HFQwen3Config(**{**config.to_hf(), "eos_token_id": None, "pad_token_id": 0, "torch_dtype": "float32"})
    torch.manual_seed(0)
    reference = Qwen3ForCausalLM(hf).eval()
    flat = {}
    for name, tensor in reference.state_dict().items():
        if name == "lm_head.weight" and config.tie_word_embeddings:
            continue
        path, transpose = hf_to_flax(name)
        flat[path] = jnp.asarray(tensor.numpy().T if transpose else tensor.numpy())
    return reference, unflatten_dict(flat)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def ours_fn(params, config, ids, sampling, seed):
    valid = jnp.ones(ids.shape, bool)
    rng = jax.random.key(seed)
    return lambda: sample(params, config, ids, valid, sampling, rng).tokens.block_until_ready()


def theirs_fn(reference, ids, args):
    import torch

    ids_t = torch.from_numpy(ids.astype(np.int64))
    mask = torch.ones_like(ids_t)

    def run():
        with torch.no_grad():
            out = reference.generate(input_ids=ids_t, attention_mask=mask, do_sample=True, max_new_tokens=args.new_tokens,
                                     min_new_tokens=args.new_tokens, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                                     pad_token_id=0)
        assert out.shape[1] == ids.shape[1] + args.new_tokens
    return run


def bench_batch(batch, args, config, reference, params, peak):
    ids = np.random.default_rng(batch).integers(3, config.vocab_size, (batch, args.prompt)).astype(np.int32)
    sampling = SamplingConfig(args.new_tokens, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, eos_token_ids=())
    runs = {"ours": ours_fn(params, config, jnp.asarray(ids), sampling, 0),
            "ours_1": ours_fn(params, config, jnp.asarray(ids), sampling.replace(max_new_tokens=1), 0)}
    first, first_one = timed(runs["ours"]), timed(runs["ours_1"])
    if reference is not None:
        runs["theirs"] = theirs_fn(reference, ids, args)
        runs["theirs"]()  # warm-up
    times = {k: [] for k in runs}
    for _ in range(args.repeats):  # interleaved, so that load from other processes hits both sides alike
        for name, run in runs.items():
            times[name].append(timed(run))
    t = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    new = batch * args.new_tokens
    decode_s = t["ours"] - t["ours_1"]
    gflops = decode_flops(config, batch, args.prompt, range(1, args.new_tokens)) / decode_s / 1e9
    line = f"batch {batch:3d}: ours {new / t['ours']:8,.0f} tok/s ({t['ours'] * 1e3:7.1f} ms; compile+first {first:.2f} s, compile ~{first - t['ours']:.2f} s)"
    if reference is not None:
        line += (f"   transformers {new / t['theirs']:8,.0f} tok/s ({t['theirs'] * 1e3:7.1f} ms)   "
                 f"ratio {t['theirs'] / t['ours']:.2f}x (goal >= {GOAL_RATIO:.0f}x)")
    print(line)
    spread = f"spread ours {best['ours'] * 1e3:.0f}-{max(times['ours']) * 1e3:.0f} ms"
    if reference is not None:
        spread += (f", transformers {best['theirs'] * 1e3:.0f}-{max(times['theirs']) * 1e3:.0f} ms "
                   f"(best-of ratio {best['theirs'] / best['ours']:.2f}x)")
    print(f"           decode: {decode_s / (args.new_tokens - 1) * 1e3:.2f} ms/step, {gflops:.1f} GFLOP/s = {100 * gflops / peak:.0f}% of the "
          f"{peak:.0f} GFLOP/s matmul peak; prefill+1 step {t['ours_1'] * 1e3:.1f} ms (compile+first {first_one:.2f} s); {spread}")
    print(f"           memory: {memory_line(params)}")


def memory_line(params) -> str:
    """Peak memory so far: the device's bytes in use where JAX reports them, else this process's RSS."""
    param_gib = sum(x.nbytes for x in jax.tree.leaves(params)) / 2**30
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return f"device peak {stats['peak_bytes_in_use'] / 2**30:.2f} GiB in use (parameters {param_gib:.2f} GiB)"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30  # Linux reports KiB
    return f"process peak RSS {rss:.2f} GiB (parameters {param_gib:.2f} GiB; {jax.default_backend()} reports no device memory)"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = NAMED_CONFIGS[args.model].replace(dtype=args.dtype, param_dtype=args.dtype)
    reference, params = models(config) if args.reference else (None, init_params(config))
    peak = matmul_peak_flops(dtype=args.dtype) / 1e9  # GFLOP/s
    anchor = "no reference"
    if reference is not None:
        import torch

        anchor = f"torch {torch.__version__} with {torch.get_num_threads()} threads"
    print(f"{args.model} Qwen3 ({config.param_count() / 1e6:.1f}M params, {args.dtype}), prompt {args.prompt}, {args.new_tokens} new tokens, "
          f"temperature {args.temperature}, top-k {args.top_k}, top-p {args.top_p}; jax {jax.__version__} ({jax.devices()[0].device_kind}), "
          f"{anchor}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; {args.dtype} 2048^2 matmul {peak:.0f} GFLOP/s; "
          f"median of {args.repeats}")
    for batch in args.batch:
        bench_batch(batch, args, config, reference, params, peak)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
