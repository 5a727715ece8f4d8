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
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from cecl_pipeline.defs.model import ModelCheckpoints
from cecl_pipeline.defs.policy import PolicyConfig, knob_overrides
from cecl_pipeline.defs.policy_job import build_job
from cecl_pipeline.grpo.data import CursorState, PromptCursor
from cecl_pipeline.grpo.member import build_trainer, encode_prompts, starting_params, step_line
from cecl_pipeline.grpo.rollout import rollout
from cecl_pipeline.llm.chat_template import ChatTemplate
from cecl_pipeline.llm.checkpoint import load_jax_checkpoint
from cecl_pipeline.settings import data_layout


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quarter", default="2023Q1")
    parser.add_argument("--steps", type=int, default=60, help="GRPO steps")
    parser.add_argument("--sft-steps", type=int, default=PolicyConfig.model_fields["sft_steps"].default)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--eval-prompts", type=int, default=32)
    parser.add_argument("--eval-samples", type=int, default=4, help="sampled answers per held-out prompt")
    parser.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE", help="any grpo_policy config knob, e.g. learning_rate=1e-4")
    return parser.parse_args()


def policy_config(args: argparse.Namespace) -> PolicyConfig:
    return PolicyConfig(**{"steps": args.steps, "sft_steps": args.sft_steps, "wandb": False, **knob_overrides(args.set)})


def held_out(job, template: ChatTemplate, count: int, prompt_length: int):
    """``count`` fixed prompts targeting the job's quarter (never trained on), encoded; and their naive MAE."""
    path = data_layout().prompts_parquet(job.quarter)
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run `bash scripts/main.sh` (or `cecl run`) first")
    frame = pd.read_parquet(path)
    frame = frame[frame["env"] == job.grpo.env].sample(n=count, random_state=0).reset_index(drop=True)
    tokens, valid = encode_prompts(template, frame, prompt_length)
    naive = float(np.mean(np.abs(frame["history"].map(lambda h: h[-1]) - frame["target"])))
    return tokens, valid, frame["target"].to_numpy(np.float64), naive


def evaluate(params, trainer, eval_set, samples: int) -> dict:
    tokens, valid, targets, _ = eval_set
    batch = rollout(params, trainer.model_config, tokens, valid, targets, trainer.tokenizer, trainer.sampling, samples,
                    trainer.config.rewards, "std", jax.random.key(1234), trainer.config.inference_batch_per_device)
    errors = [e for e in batch.errors if e is not None]
    return {"reward": float(batch.rewards.mean()), "parsed": float(np.mean([p is not None for p in batch.parsed])),
            "mae": float(np.mean(errors)) if errors else float("nan")}


def main() -> None:
    args = parse_args()
    models = ModelCheckpoints()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cecl-curve-") as scratch:
        job = build_job(args.quarter, policy_config(args), models.jax_path(), data_layout(), Path(scratch), Path(scratch) / "wandb")
        model_config, params = load_jax_checkpoint(models.jax_path(), dtype="float32")
        trainer = build_trainer(job, 0, models.jax_path(), model_config)
        eval_set = held_out(job, ChatTemplate(models.jax_path()), args.eval_prompts, job.grpo.prompt_length)
        print(f"{job.quarter} · env {job.grpo.env} · {len(trainer.targets)} training prompts from {len(job.prompt_files)} quarters · "
              f"held out: {args.eval_prompts} prompts × {args.eval_samples} samples; naive last-value MAE {eval_set[3]:.3f} pp")
        rows = [("base", 0, evaluate(params, trainer, eval_set, args.eval_samples))]
        params = starting_params(job, 0, trainer, params, Path(scratch) / "work", False, print)
        rows.append(("after SFT", 0, evaluate(params, trainer, eval_set, args.eval_samples)))
        state, cursor = trainer.init_state(params), PromptCursor(len(trainer.targets), CursorState(seed=job.member_seed(0)))
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
          f"(naive last value {eval_set[3]:.3f} pp)")


if __name__ == "__main__":
    main()
