"""Learning signal on the embedded default: SFT warm-start, then GRPO, on CPU; prints the curve.

Trains member 0 of grpo_policy[QUARTER] exactly as the asset would (same job, trainer and
warm-start code) into a temporary folder, and evaluates on a fixed held-out set — prompts whose
target is QUARTER itself, which training never sees — before training, after the SFT warm-start
and every --eval-every GRPO steps: mean reward, parse rate and MAE (pp) of G sampled answers per
prompt, beside the naive last-value forecast's MAE on the same prompts.

    bash scripts/main.sh                                  # once: the default data and model
    .venv/bin/python benchmarks/learning_curve.py         # 2023Q1, 200 SFT + 60 GRPO steps
    .venv/bin/python benchmarks/learning_curve.py --steps 100 --eval-every 20 --set learning_rate=1e-4
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from cecl_pipeline.defs.model_assets import ModelCheckpoints
from cecl_pipeline.envs.registry import get_env
from cecl_pipeline.grpo import knobs
from cecl_pipeline.grpo.data import CursorState, PromptCursor, PromptSet
from cecl_pipeline.grpo.member import build_trainer, starting_params, training_data
from cecl_pipeline.grpo.metrics_log import step_line
from cecl_pipeline.grpo.policy_store import PolicyStore
from cecl_pipeline.grpo.rollout import rollout
from cecl_pipeline.grpo.training_job import PolicyJob
from cecl_pipeline.llm.chat_template import ChatTemplate
from cecl_pipeline.llm.checkpoint import load_jax_checkpoint
from cecl_pipeline.llm.prompt_tokens import encode_prompts
from cecl_pipeline.settings import data_layout


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quarter", default="2023Q1")
    parser.add_argument("--steps", type=int, default=60, help="GRPO steps")
    parser.add_argument("--sft-steps", type=int, default=knobs.knob("sft_steps").default)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--eval-prompts", type=int, default=32)
    parser.add_argument("--eval-samples", type=int, default=4, help="sampled answers per held-out prompt")
    parser.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE", help="any grpo_policy config knob, e.g. learning_rate=1e-4")
    return parser.parse_args()


def knob_values(args: argparse.Namespace) -> dict:
    return {"steps": args.steps, "sft_steps": args.sft_steps, "wandb": False, **knobs.parse_assignments(args.set)}



def held_out(job, template: ChatTemplate, count: int, prompt_length: int):
    """``count`` fixed prompts targeting the job's quarter (never trained on), encoded; and their naive MAE."""
    path = data_layout().prompts_parquet(job.quarter)
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run `bash scripts/main.sh` (or `cecl run`) first")
    frame = pd.read_parquet(path)
    frame = frame[frame["env"] == job.grpo.env].sample(n=count, random_state=0).reset_index(drop=True)
    tokens, valid = encode_prompts(template, frame, prompt_length)
    naive = float(np.mean(np.abs(frame["history"].map(lambda h: h[-1]) - frame["target"])))
    return PromptSet.of_rows(tokens, valid, frame, get_env(job.grpo.env).anchors(frame)), naive


def evaluate(params, trainer, eval_set, samples: int) -> dict:
    prompts, _ = eval_set
    settings = replace(trainer.rollout_settings, group_size=samples, advantage_scale="std", old_logprobs=True)
    batch = rollout(params, trainer.model_config, prompts, settings, trainer.reward, jax.random.key(1234))
    errors = [e for e in batch.errors if e is not None]
    return {"reward": float(batch.rewards.mean()), "parsed": float(np.mean([p is not None for p in batch.parsed])),
            "mae": float(np.mean(errors)) if errors else float("nan")}


def main() -> None:
    args = parse_args()
    base = ModelCheckpoints().jax_path()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cecl-curve-") as scratch:
        job = PolicyJob.for_quarter(args.quarter, knob_values(args), data_layout().prompts_parquet, base, PolicyStore(Path(scratch)),
                                    Path(scratch) / "wandb")
        model_config, params = load_jax_checkpoint(base, dtype="float32")
        data = training_data(job, base, model_config)
        trainer = build_trainer(job, 0, data, model_config, params)
        eval_set = held_out(job, ChatTemplate(base), args.eval_prompts, job.grpo.prompt_length)
        print(f"{job.quarter} · env {job.grpo.env} · {len(data.prompts)} training prompts from {len(job.prompt_files)} quarters · "
              f"held out: {args.eval_prompts} prompts × {args.eval_samples} samples; naive last-value MAE {eval_set[1]:.3f} pp")
        rows = [("base", 0, evaluate(params, trainer, eval_set, args.eval_samples))]
        params = starting_params(job, 0, data, model_config, params, Path(scratch) / "work", False, print)
        trainer = build_trainer(job, 0, data, model_config, params)  # the warm-started policy is the KL reference
        rows.append(("after SFT", 0, evaluate(params, trainer, eval_set, args.eval_samples)))
        state, cursor = trainer.init_state(params), PromptCursor(len(data.prompts), CursorState(seed=job.member_seed(0)))
        for step in range(1, args.steps + 1):
            state, metrics = trainer.step(state, cursor)
            print(step_line(metrics, args.steps, 0), flush=True)
            if step % args.eval_every == 0 or step == args.steps:
                rows.append(("GRPO", step, evaluate(state["params"], trainer, eval_set, args.eval_samples)))
    print(f"\nheld-out curve ({time.perf_counter() - started:.0f} s in all)\n{'stage':<10} {'step':>4} {'reward':>8} {'parsed':>7} {'MAE pp':>7}")
    for stage, step, r in rows:
        print(f"{stage:<10} {step:>4} {r['reward']:>+8.3f} {r['parsed']:>7.0%} {r['mae']:>7.3f}")
    first, last = rows[1][2], rows[-1][2]
    print(f"GRPO vs its step 0 (after SFT): reward {first['reward']:+.3f} → {last['reward']:+.3f}, MAE {first['mae']:.3f} → {last['mae']:.3f} pp "
          f"(naive last value {eval_set[1]:.3f} pp)")


if __name__ == "__main__":
    main()
