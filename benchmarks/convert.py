"""Benchmark: HF → JAX conversion of a random Qwen3-0.6B-shape bf16 checkpoint against merely reading it.

Writes the checkpoint (untimed), then in the same run times (a) the anchor: reading every tensor
with safetensors' numpy API into memory and dropping it, and (b) ``hf_to_jax`` to bf16. Goal from
the issue: ≤ 1.5x the read time and peak RSS ≤ 1.3x the checkpoint size. For context it also times
the I/O floor of any converter that keeps the model in memory once and persists it: read the file
into fresh memory, write it to a new file, fsync. Informative only: the script exits 0 either way.

Every step runs in its own fresh subprocess and reports its peak RSS with ``resource.getrusage``.
This parent process imports neither numpy nor JAX, because Linux carries ru_maxrss over fork and
exec: a child of a big parent would report the parent's size as its own peak.

    .venv/bin/python benchmarks/convert.py                     # full 0.6B run
    .venv/bin/python benchmarks/convert.py --model tiny        # quick sanity run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_TIME_RATIO = 1.5
GOAL_RSS_RATIO = 1.3
GIB = 2**30


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen3-0.6b", help="a NAMED_CONFIGS shape")
    parser.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float32"), help="checkpoint and target dtype")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each timed step; medians are reported")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, help="default: a fresh temporary folder, removed at the end unless --keep")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--child", metavar="STEP", choices=sorted(STEPS), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def max_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB  # Linux reports KiB


def step_write(args: argparse.Namespace) -> dict:
    """Untimed setup: the random HF checkpoint."""
    from cecl_pipeline.llm.config import named_config
    from cecl_pipeline.llm.hf_export import write_random_hf_checkpoint

    config = named_config(args.model)
    write_random_hf_checkpoint(config, args.workdir / "hf", seed=args.seed, dtype=args.dtype)
    return {"parameters": config.param_count()}


def step_read(args: argparse.Namespace) -> dict:
    """The anchor: every tensor into memory with safetensors' numpy API, then dropped."""
    import ml_dtypes  # noqa: F401  (numpy then knows "bfloat16")
    from safetensors import safe_open

    started = time.perf_counter()
    for path in sorted((args.workdir / "hf").glob("*.safetensors")):
        with safe_open(path, framework="np") as handle:
            for name in handle.keys():
                handle.get_tensor(name)
    return {"seconds": time.perf_counter() - started}


def step_floor(args: argparse.Namespace) -> dict:
    """Read the weights into fresh memory, kept whole, then write them to a new file and fsync."""
    started, kept = time.perf_counter(), []
    for path in sorted((args.workdir / "hf").glob("*.safetensors")):
        kept.append(path.read_bytes())
    with open(args.workdir / "floor.bin", "wb") as fh:
        for block in kept:
            fh.write(block)
        os.fsync(fh.fileno())
    seconds = time.perf_counter() - started
    (args.workdir / "floor.bin").unlink()
    return {"seconds": seconds}


def step_convert(args: argparse.Namespace) -> dict:
    """hf_to_jax; the baseline is this process after the imports the conversion needs."""
    import jax
    import orbax.checkpoint  # noqa: F401  (imported by the conversion anyway; counted in the baseline)

    from cecl_pipeline.llm.convert import hf_to_jax

    jax.devices()  # orbax brings the backend up; count it in the baseline too
    baseline = max_rss_gib()
    shutil.rmtree(args.workdir / "jax", ignore_errors=True)
    return {"seconds": hf_to_jax(args.workdir / "hf", args.workdir / "jax", dtype=args.dtype).seconds, "baseline_gib": baseline}


def step_phases(args: argparse.Namespace) -> dict:
    """The steps of hf_to_jax one after another, each timed (the hash overlaps the rest in hf_to_jax)."""
    from flax.traverse_util import unflatten_dict

    from cecl_pipeline.llm import convert
    from cecl_pipeline.llm.checkpoint import fsync_tree, save_params

    out = args.workdir / "phases"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    clock, phases = time.perf_counter(), {}

    def lap(name: str) -> None:
        nonlocal clock
        phases[name], clock = time.perf_counter() - clock, time.perf_counter()

    source = convert.inspect_hf_dir(args.workdir / "hf")
    lap("headers")
    flat = convert.convert_tensors(source, convert.DTYPES[args.dtype])
    lap("read+cast/transpose")
    save_params(unflatten_dict(flat), out / "params")
    lap("orbax save")
    fsync_tree(out)
    lap("fsync")
    convert.source_sha256(source)
    lap("sha256")
    return {"phases": phases}


STEPS = {"write": step_write, "read": step_read, "floor": step_floor, "convert": step_convert, "phases": step_phases}


def run_step(step: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", step, "--model", args.model, "--dtype", args.dtype,
               "--seed", str(args.seed), "--workdir", str(args.workdir)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"step {step} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        result = STEPS[args.child](args)
        print(json.dumps({**result, "peak_gib": max_rss_gib()}))
        return 0
    keep = args.keep or args.workdir is not None
    args.workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="cecl-bench-convert-"))).absolute()
    try:
        started = time.perf_counter()
        parameters = run_step("write", args)["parameters"]
        size = sum(p.stat().st_size for p in (args.workdir / "hf").glob("*.safetensors")) / GIB
        print(f"checkpoint: {args.model}, {args.dtype}, {parameters:,} parameters, {size:.3f} GiB "
              f"(written in {time.perf_counter() - started:.1f} s, untimed) in {args.workdir}")
        runs = {step: [run_step(step, args) for _ in range(args.repeat)] for step in ("read", "floor", "convert")}
        report(runs, run_step("phases", args)["phases"], size)
    finally:
        if not keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


def report(runs: dict[str, list[dict]], phases: dict, size: float) -> None:
    seconds = {step: statistics.median(r["seconds"] for r in results) for step, results in runs.items()}
    for step, label in [("read", "read (anchor: numpy API, all tensors)"), ("floor", "I/O floor (read+keep, write, fsync)"),
                        ("convert", "convert (hf_to_jax to the same dtype)")]:
        each = ", ".join(f"{r['seconds']:.3f}" for r in runs[step])
        print(f"{label:<40} {seconds[step]:7.3f} s  median of {each}")
    ratio = seconds["convert"] / seconds["read"]
    print(f"convert / read:  {ratio:.2f}x  goal ≤ {GOAL_TIME_RATIO}x: {'PASS' if ratio <= GOAL_TIME_RATIO else 'MISS'}"
          f"   (convert / I/O floor: {seconds['convert'] / seconds['floor']:.2f}x)")
    peak = max(r["peak_gib"] for r in runs["convert"])
    baseline = statistics.median(r["baseline_gib"] for r in runs["convert"])
    print(f"checkpoint size: {size:.3f} GiB   conversion peak RSS: {peak:.3f} GiB   "
          f"baseline (python + jax + orbax, backend up): {baseline:.3f} GiB   peak - baseline: {peak - baseline:.3f} GiB")
    print(f"peak RSS / size: {peak / size:.2f}x  goal ≤ {GOAL_RSS_RATIO}x: {'PASS' if peak <= GOAL_RSS_RATIO * size else 'MISS'}"
          f"   ((peak - baseline) / size: {(peak - baseline) / size:.2f}x)")
    print("phases of hf_to_jax, run one after another (s): " + ", ".join(f"{k} {v:.3f}" for k, v in phases.items()))


if __name__ == "__main__":
    sys.exit(main())
