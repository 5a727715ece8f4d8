"""The real-data walk-forward: Fed charge-off rates, 2010Q1–2015Q4, default tiny model, end to end on CPU.

Runs the same `cecl` commands a user would, against its own data, checkpoint and Dagster folders
(default results/real-data-walkforward/), so the project's default run is left alone:

    import-history   ../shared/data: both Fed charge-off files and the macro history
    convert-model    the embedded tiny Qwen3, HF → JAX
    materialize      macro_history; nco_panel from 12 quarters before the first prompt quarter; nco_prompts
    train            grpo_policy per quarter, oldest first (each warm-starts from the one before)
    eval-nco         walkforward_forecasts per quarter, then walkforward_report

and prints the seconds of each stage, the report's tables, its skill figures and the targets as PASS/MISS lines. Goal: under 30 minutes on 2 CPU cores.

    .venv/bin/python benchmarks/walkforward_real.py [--first 2010Q1] [--last 2015Q4] [--out DIR] [--set KNOB=VALUE ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT.parent / "shared" / "data"
FILES = ("fed_chargeoff_rates_nsa.csv", "fred_chargeoff_rates.csv", "frb_macro_history.csv")
GOAL_SECONDS = 30 * 60


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--first", default="2010Q1")
    parser.add_argument("--last", default="2015Q4")
    parser.add_argument("--out", default=str(PROJECT / "results" / "real-data-walkforward"))
    parser.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE", help="grpo_policy knobs, as for `cecl train`")
    return parser.parse_args()


def isolate(out: Path) -> None:
    """Point every pipeline folder at ``out`` (before anything reads them)."""
    for name, sub in (("CECL_DATA_DIR", "data"), ("CECL_CHECKPOINT_DIR", "checkpoints"), ("CECL_RESULTS_DIR", "results"),
                      ("DAGSTER_HOME", "dagster_home")):
        os.environ[name] = str(out / sub)
    os.environ.pop("CECL_SYNTHETIC", None)


def main() -> int:
    args = parse_args()
    out = Path(args.out).resolve()
    isolate(out)
    from cecl_pipeline import quarters as q
    from cecl_pipeline.cli import main as cecl
    from cecl_pipeline.settings import DEFAULT_LOOKBACK, DEFAULT_TRAIN_QUARTERS, results_dir

    first_prompt = q.shift(args.first, -DEFAULT_TRAIN_QUARTERS)
    knobs = [a for item in args.set for a in ("--set", item)]
    stages = [
        *[(f"import {name}", ["import-history", str(SHARED_DATA / name)]) for name in FILES],
        ("convert-model", ["convert-model"]),
        ("macro_history", ["materialize", "--select", "macro_history"]),
        ("nco_panel (history)", ["materialize", "--select", "nco_panel", "--first", q.shift(first_prompt, -DEFAULT_LOOKBACK),
                                 "--last", q.shift(first_prompt, -1)]),
        ("nco_panel + nco_prompts", ["materialize", "--select", "nco_panel,nco_prompts", "--first", first_prompt, "--last", args.last]),
        ("train grpo_policy", ["train", "--first", args.first, "--last", args.last, *knobs]),
        ("eval-nco", ["eval-nco", "--first", args.first, "--last", args.last]),
    ]
    started = time.perf_counter()
    timings = []
    for name, argv in stages:
        print(f"\n== {name}: cecl {' '.join(argv)}", flush=True)
        t0 = time.perf_counter()
        code = cecl(argv)
        timings.append((name, time.perf_counter() - t0))
        if code != 0:
            print(f"stage {name!r} failed (exit {code}); see DAGSTER_HOME={os.environ['DAGSTER_HOME']}", file=sys.stderr)
            return code
    total = time.perf_counter() - started
    print_summary(timings, total, results_dir() / "walkforward")
    return 0


def print_summary(timings: list[tuple[str, float]], total: float, report_dir: Path) -> None:
    import pandas as pd

    from cecl_pipeline.forecast.skill import target_lines

    print("\n| stage | seconds |\n|---|---:|")
    for name, seconds in timings:
        print(f"| {name} | {seconds:.0f} |")
    print(f"| **total** | **{total:.0f}** |")
    metrics = pd.read_csv(report_dir / "metrics.csv")
    columns = ["model", "n", "mae", "rmse", "bias", "directional_accuracy", "coverage_10_90", "coverage_10_90_cal", "pinball", "crps"]
    for scope in ("overall", "stress", "segment"):
        table = metrics[metrics["scope"] == scope]
        keys = {"stress": ["window"], "segment": ["segment"]}.get(scope, [])
        print(f"\n{scope}:\n{table.reindex(columns=keys + columns).round(3).to_markdown(index=False)}")
    overall = metrics[metrics["scope"] == "overall"]
    skill = ["model", "mae", "rel_mae", "mase", "gmrae", "share_beating_best", "dm_stat", "dm_pvalue", "best_challenger"]
    print(f"\nskill (rel_mae, gmrae against persistence; head-to-head against the best challenger):\n"
          f"{overall.reindex(columns=skill).round(3).to_markdown(index=False)}")
    print("\ntargets:")
    for line in target_lines(overall):
        print(line)
    print(f"{'PASS' if total <= GOAL_SECONDS else 'MISS'}  end to end: {total / 60:.1f} min against < {GOAL_SECONDS / 60:.0f} min")
    print(f"\nreport: {report_dir / 'report.md'}")


if __name__ == "__main__":
    sys.exit(main())
