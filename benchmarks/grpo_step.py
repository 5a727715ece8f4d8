"""Benchmark: one GRPO step of our trainer against TRL's GRPOTrainer, side by side in one run.

The sampling benchmark's config: the "tiny" Qwen3 (hidden 256, 4 layers, 4/2 heads, head_dim 64,
intermediate 768, vocab 4096) with the same random weights on both sides, fp32 on CPU; 16
completions a step (2 prompts x G=8) of exactly 64 new tokens at temperature 1, no top-k/top-p;
one optimizer update of all 16 completions a step (our ppo_minibatch 16, TRL's batch 16 with no
gradient accumulation), the clipped surrogate with eps 0.2/0.28, no KL term (beta 0, no reference
model). Goal from the issue: ours >= 3x TRL's steps/s. Informative only: the script exits 0 either
way. TRL comes from ``bash scripts/setup.sh --bench-reference``; without it only our side runs.

    .venv/bin/python benchmarks/grpo_step.py                      # 2 warm-up + 5 timed steps a side
    .venv/bin/python benchmarks/grpo_step.py --steps 10 --warmup 3 --ppo-minibatch 8

Inputs are identical on both sides: the embedded default's tokenizer (byte-level BPE trained on
the prompt corpus), and real prompts from that corpus cut to exactly 128 tokens, kept only where
the cut text re-tokenizes to the same 128 ids (TRL tokenizes text; we feed ids); no padding.
Every completion is 64 tokens: ours samples with no EOS ids (``eos_token_ids=()``), TRL with
``min_new_tokens=64``, which masks its EOS logit until the 64th token, the last one.

Where the two differ by design, and what that costs (printed in the breakdown):

- Both skip the old-log-prob pass when one generation feeds one update (ours: ``grpo/rollout.py``),
  and both compute the head on the completion positions only. The breakdown still times that
  pass alone, as a ppo_epochs > 1 run pays it.
- Ours computes each prompt once per group of G: one prefill per prompt when sampling, and in the
  update one pass over the prompt into a KV cache that its G completions attend to (same logits and
  gradients; tested in ``cecl_pipeline_tests/grpo/test_policy.py``). TRL repeats every prompt G
  times in both. With these shapes that is most of our lead.
- TRL turns gradient checkpointing on by default; it is off here, as ours (``remat``) is off.
  ``--trl-gradient-checkpointing`` restores TRL's default.
- Rewards: ours scores the completions with the NCO reward; TRL gets a trivial Python function.

Step times: ours, wall time of ``GRPOTrainer.step`` (blocked on the new params); TRL, from a
``TrainerCallback``'s ``on_step_begin`` to ``on_step_end`` (generation, rewards, forward, backward,
optimizer). The two alternate, one step each (ours runs from TRL's ``on_step_end``, outside its
timed window), so that load from other processes hits both alike; torch's OpenMP threads suffer
far more from a busy core than XLA's pool does, so run it on an otherwise idle machine. Both
exclude the first ``--warmup`` steps (JAX compilation, torch's first allocations) and report the
median. Update MFU: FLOPs from ``cecl_pipeline/llm/flops.py``, forward + backward = 3x forward,
over the update's median time, beside a float32 2048^2 matmul peak measured in this run (before
and after the steps; the better of the two). Each side is charged what it computes: TRL,
``update_flops(config, 16, 192, 64)`` (191 tokens fed per row with full 191x191 attention, head on
the 64 completion positions); ours, ``grouped_update_flops(config, 16, 192, 64, 8)`` (each group's
prompt once into a KV cache, then every completion against it; ``grpo/policy.py``). Our update is
timed alone by calling the jitted ``trainer.update`` on a rollout; TRL's is its step time minus
``_generate_and_score_completions``. The last line says how many cores other
processes kept busy meanwhile (from /proc/stat); anything above ~0.1 makes the figures unreliable.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable

import jax
import numpy as np
import torch
from flax.traverse_util import unflatten_dict
from transformers import Qwen3Config as HFQwen3Config
from transformers import Qwen3ForCausalLM

from cecl_pipeline.bootstrap.corpus import prompt_corpus
from cecl_pipeline.grpo.data import CursorState, PromptCursor, PromptSet
from cecl_pipeline.grpo.logprobs import completion_logprobs_jit
from cecl_pipeline.grpo.loss import GRPOLossConfig
from cecl_pipeline.grpo.rewards import ForecastReward
from cecl_pipeline.grpo.rollout import rollout
from cecl_pipeline.grpo.trainer import GRPOConfig, GRPOTrainer
from cecl_pipeline.llm.chat_template import ChatTemplate
from cecl_pipeline.llm.config import NAMED_CONFIGS, Qwen3Config
from cecl_pipeline.llm.flops import decode_flops, grouped_update_flops, matmul_peak_flops, update_flops
from cecl_pipeline.llm.generation import generate
from cecl_pipeline.llm.param_names import hf_to_flax
from cecl_pipeline.llm.tokenizer import build_tokenizer, save_hf_tokenizer

GOAL_RATIO = 3.0
EPSILON_LOW, EPSILON_HIGH = 0.2, 0.28


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=2, help="prompts per step (groups)")
    parser.add_argument("--group-size", type=int, default=8, help="completions per prompt (G)")
    parser.add_argument("--ppo-minibatch", type=int, default=16, help="our completions per update; TRL always updates on the whole batch")
    parser.add_argument("--prompt-length", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first, on each side")
    parser.add_argument("--steps", type=int, default=5, help="timed steps on each side; the median is reported")
    parser.add_argument("--update-repeats", type=int, default=5, help="timed calls of our update alone, and of each rollout phase")
    parser.add_argument("--trl-gradient-checkpointing", action="store_true", help="TRL's own default; off to match our remat=False")
    parser.add_argument("--skip-trl", action="store_true", help="time our side only")
    return parser.parse_args(argv)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class OtherLoad:
    """Cores that other processes kept busy on average since ``start()``, from /proc/stat (None where it is missing)."""

    def start(self) -> OtherLoad:
        self._start = self._sample()
        return self

    @staticmethod
    def _sample():
        try:
            with open("/proc/stat") as f:
                jiffies = [int(x) for x in f.readline().split()[1:9]]
        except OSError:
            return None
        times = os.times()
        busy = (sum(jiffies) - jiffies[3] - jiffies[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
        return busy, times.user + times.system, time.perf_counter()

    def cores(self) -> float | None:
        end = self._sample()
        if end is None or self._start is None:
            return None
        (busy0, ours0, t0), (busy1, ours1, t1) = self._start, end
        return max(0.0, (busy1 - busy0) - (ours1 - ours0)) / (t1 - t0)


def models(config: Qwen3Config, eos_id: int, pad_id: int) -> tuple[Qwen3ForCausalLM, dict]:
    """A random transformers model and our params holding the same weights."""
    hf = HFQwen3Config(**{**config.to_hf(), "eos_token_id": eos_id, "pad_token_id": pad_id, "torch_dtype": "float32"})
    torch.manual_seed(0)
    reference = Qwen3ForCausalLM(hf)
    flat = {}
    for name, tensor in reference.state_dict().items():
        if name == "lm_head.weight" and config.tie_word_embeddings:
            continue
        path, transpose = hf_to_flax(name)
        flat[path] = jax.numpy.asarray(tensor.numpy().T if transpose else tensor.numpy())
    return reference, unflatten_dict(flat)


def tokenizer_and_prompts(tmp: str, vocab_size: int, count: int, length: int):
    """The embedded default's tokenizer, and ``count`` corpus prompts of exactly ``length`` tokens that survive a text round trip."""
    save_hf_tokenizer(build_tokenizer(prompt_corpus(), vocab_size=vocab_size), tmp, model_max_length=4096)
    tok = ChatTemplate(tmp).tokenizer
    texts, ids = [], []
    for text in prompt_corpus(n_banks=2, every=4):
        full = tok(text, add_special_tokens=False)["input_ids"]
        if len(full) < length:
            continue
        cut = tok.decode(full[:length])
        if tok(cut, add_special_tokens=False)["input_ids"] == full[:length] and cut not in texts:
            texts.append(cut)
            ids.append(full[:length])
        if len(texts) == count:
            break
    if len(texts) < count:
        raise SystemExit(f"only {len(texts)} corpus prompts of {length} tokens round-trip; lower --prompt-length")
    # what TRL's _tokenize_prompts does with text prompts: processing_class(text=prompts), special tokens on
    assert tok(text=texts)["input_ids"] == ids, "TRL would see other prompt tokens than ours"
    return tok, texts, np.asarray(ids, np.int32)


# --- ours ---------------------------------------------------------------------------------------


class Ours:
    """Our trainer on the benchmark's config; ``step()`` runs and times one GRPO step, ``report()`` prints the figures."""

    def __init__(self, args, config: Qwen3Config, params, tok, tokens: np.ndarray):
        self.args, self.config, self.tok, self.tokens = args, config, tok, tokens
        self.n = args.prompts * args.group_size
        self.grpo = GRPOConfig(groups_per_batch=args.prompts, group_size=args.group_size, ppo_minibatch=args.ppo_minibatch, ppo_epochs=1,
                               num_generation_tokens=args.new_tokens, inference_batch_per_device=self.n, prompt_length=args.prompt_length,
                               temperature=1.0, top_k=0, top_p=1.0,
                               loss=GRPOLossConfig(epsilon_low=EPSILON_LOW, epsilon_high=EPSILON_HIGH, beta=0.0))
        self.valid = np.ones(tokens.shape, bool)
        self.targets = np.linspace(0.5, 2.0, len(tokens))
        self.prompts = PromptSet(tokens, self.valid, self.targets, np.ones(len(self.targets)), np.zeros(len(self.targets)))
        self.trainer = GRPOTrainer(self.grpo, config, self.prompts, tok, (), ForecastReward(config=self.grpo.rewards))
        self.state = self.trainer.init_state(params)
        self.cursor = PromptCursor(len(tokens), CursorState(seed=0))
        self.times: list[float] = []

    def step(self) -> None:
        start = time.perf_counter()
        self.state, metrics = self.trainer.step(self.state, self.cursor)
        jax.block_until_ready(self.state["params"])
        self.times.append(time.perf_counter() - start)
        expected = self.n * self.args.new_tokens
        assert metrics["completion_tokens"] == expected, f"ours generated {metrics['completion_tokens']} completion tokens, not {expected}"

    def phases(self) -> dict[str, float]:
        """Median seconds of each phase of a step run alone, on the current params (all compiled by now)."""
        args, config, trainer, n, p = self.args, self.config, self.trainer, self.n, self.state["params"]
        prompts = self.prompts.take(np.arange(args.prompts))
        key = jax.random.key(1)

        def run_rollout():
            return rollout(p, config, prompts, trainer.rollout_settings, trainer.reward, key)

        batch = run_rollout()
        seqs, seq_valid = jax.numpy.asarray(batch.sequences), jax.numpy.asarray(batch.sequence_valid)
        self.minibatches = trainer.minibatches(jax.random.key(2), n)

        def run_updates():
            params, opt_state = p, self.state["opt_state"]
            for rows in self.minibatches:
                params, opt_state, _ = trainer.update(params, opt_state, batch.select(rows), None)
            jax.block_until_ready(params)

        phases = {
            "sample": lambda: generate(p, config, prompts.tokens, prompts.valid, trainer.rollout_settings.sampling, key, n, args.group_size),
            "old log-probs": lambda: completion_logprobs_jit(p, config, seqs, seq_valid, args.prompt_length, args.group_size).block_until_ready(),
            "rollout": run_rollout,
            "update": run_updates,
        }
        for fn in phases.values():
            fn()  # warm: the update's first call on these exact shapes
        return {name: statistics.median(timed(fn) for _ in range(args.update_repeats)) for name, fn in phases.items()}

    def report(self, peak: float) -> dict:
        args, config, n = self.args, self.config, self.n
        times, steps = self.phases(), self.times[args.warmup :]
        step = statistics.median(steps)
        width = args.prompt_length + args.new_tokens
        flops_update = grouped_update_flops(config, n, width, args.new_tokens, self.trainer.prompt_share) * self.grpo.ppo_epochs
        gf = lambda flops, s: f"{flops / s / 1e9:.0f} GFLOP/s"
        rest = times["rollout"] - times["sample"] - (times["old log-probs"] if self.trainer.reuses_rollouts else 0)
        print(f"ours: {step:.3f} s/step (median of {len(steps)}; spread {min(steps):.3f}-{max(steps):.3f}), "
              f"{n * args.new_tokens / step:,.0f} completion tok/s; {len(self.minibatches)} update(s) of {args.ppo_minibatch} a step")
        print(f"      phases alone (median of {args.update_repeats}): sample {times['sample'] * 1e3:.0f} ms "
              f"(decode FLOPs only: {gf(decode_flops(config, n, args.prompt_length, range(1, args.new_tokens)), times['sample'])}), "
              f"old log-probs {times['old log-probs'] * 1e3:.0f} ms ({'paid' if self.trainer.reuses_rollouts else 'skipped'} in a step), "
              f"decode + reward + advantages {rest * 1e3:.0f} ms, update {times['update'] * 1e3:.0f} ms ({gf(flops_update, times['update'])}); "
              f"step - rollout - update = {(step - times['rollout'] - times['update']) * 1e3:.0f} ms")
        return {"step": step, "best": min(steps), "update": times["update"], "rollout": times["rollout"], "update_flops": flops_update,
                "mfu": flops_update / times["update"] / peak}


# --- TRL ----------------------------------------------------------------------------------------


def run_trl(args, reference, tok, texts, between: Callable[[], None]) -> dict:
    """TRL's GRPOTrainer on the same config; ``between()`` runs after each of its steps, outside its timed window."""
    import datasets
    import transformers
    import trl
    from transformers import PrinterCallback, TrainerCallback

    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    warnings.filterwarnings("ignore")
    logging.getLogger("trl").setLevel(logging.ERROR)
    n = args.prompts * args.group_size

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.steps, self.rollouts, self._start = [], [], None

        def on_step_begin(self, args, state, control, **kwargs):
            self._start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.steps.append(time.perf_counter() - self._start)
            between()

    def digits_reward(completions, **kwargs) -> list[float]:
        return [float(sum(ch.isdigit() for ch in c)) for c in completions]

    with tempfile.TemporaryDirectory() as out:
        trl_config = trl.GRPOConfig(
            output_dir=out, use_cpu=True, bf16=False, fp16=False, seed=0, max_steps=args.warmup + args.steps,
            per_device_train_batch_size=n, gradient_accumulation_steps=1, num_generations=args.group_size, num_iterations=1,
            max_completion_length=args.new_tokens, temperature=1.0, top_k=0, top_p=1.0, generation_kwargs={"min_new_tokens": args.new_tokens},
            beta=0.0, epsilon=EPSILON_LOW, epsilon_high=EPSILON_HIGH, loss_type="dapo", scale_rewards="group", learning_rate=1e-5,
            gradient_checkpointing=args.trl_gradient_checkpointing, use_vllm=False,
            logging_strategy="no", save_strategy="no", report_to="none", disable_tqdm=True, dataloader_pin_memory=False,
        )
        timer = StepTimer()
        trainer = trl.GRPOTrainer(model=reference, reward_funcs=[digits_reward], args=trl_config,
                                  train_dataset=datasets.Dataset.from_dict({"prompt": texts}), processing_class=tok, callbacks=[timer])
        inner = trainer._generate_and_score_completions

        def timed_rollout(*a, **kw):
            start = time.perf_counter()
            result = inner(*a, **kw)
            timer.rollouts.append(time.perf_counter() - start)
            assert result["completion_ids"].shape == (n, args.new_tokens) and bool(result["completion_mask"].all()), \
                "TRL did not generate exactly the asked number of tokens"
            return result

        trainer._generate_and_score_completions = timed_rollout
        trainer.remove_callback(PrinterCallback)  # its end-of-training summary line
        trainer.train()
    total = args.warmup + args.steps
    assert len(timer.steps) == total and len(timer.rollouts) == total, (len(timer.steps), len(timer.rollouts))
    return {"steps": timer.steps, "rollouts": timer.rollouts, "version": trl.__version__}


def report_trl(args, config: Qwen3Config, run: dict, peak: float) -> dict:
    n = args.prompts * args.group_size
    steps, rollouts = run["steps"][args.warmup :], run["rollouts"][args.warmup :]
    step, roll = statistics.median(steps), statistics.median(rollouts)
    update = statistics.median(s - r for s, r in zip(steps, rollouts, strict=False))
    width = args.prompt_length + args.new_tokens
    flops_update = update_flops(config, n, width, args.new_tokens)
    print(f"TRL:  {step:.3f} s/step (median of {len(steps)}; spread {min(steps):.3f}-{max(steps):.3f}), "
          f"{n * args.new_tokens / step:,.0f} completion tok/s; generate + score {roll * 1e3:.0f} ms, "
          f"the rest (forward, backward, optimizer) {update * 1e3:.0f} ms ({flops_update / update / 1e9:.0f} GFLOP/s); trl {run['version']}, "
          f"gradient checkpointing {'on' if args.trl_gradient_checkpointing else 'off'}")
    return {"step": step, "best": min(steps), "update": update, "rollout": roll, "update_flops": flops_update, "mfu": flops_update / update / peak}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cores = os.cpu_count() or 1
    torch.set_num_threads(cores)  # a fair anchor: torch gets every core, as XLA does
    config = NAMED_CONFIGS["tiny"]
    n = args.prompts * args.group_size
    count = args.prompts * (args.warmup + args.steps)  # one epoch of distinct prompts on each side
    with tempfile.TemporaryDirectory() as tmp:
        tok, texts, tokens = tokenizer_and_prompts(tmp, config.vocab_size, count, args.prompt_length)
    reference, params = models(config, tok.eos_token_id, tok.pad_token_id)
    peak = matmul_peak_flops()
    print(f"tiny Qwen3 ({config.param_count() / 1e6:.1f}M params); {n} completions a step ({args.prompts} prompts x G={args.group_size}), "
          f"prompt {args.prompt_length}, {args.new_tokens} new tokens, temperature 1; jax {jax.__version__} ({jax.default_backend()}), "
          f"torch {torch.__version__} with {torch.get_num_threads()} threads, {cores} cores, load {os.getloadavg()[0]:.1f}; "
          f"jnp fp32 2048^2 matmul peak {peak / 1e9:.0f} GFLOP/s; {args.warmup} warm-up + {args.steps} timed steps a side")
    ours = Ours(args, config, params, tok, tokens)
    others = OtherLoad().start()
    trl_run = None
    if not args.skip_trl:
        if importlib.util.find_spec("trl") is None:
            print("TRL is not installed (`bash scripts/setup.sh --bench-reference` adds it): our side only")
        else:  # interleaved, one step each, so that load from other processes hits both sides alike
            trl_run = run_trl(args, reference, tok, texts, between=ours.step)
    while len(ours.times) < args.warmup + args.steps:
        ours.step()
    other_cores = others.cores()
    peak_after = matmul_peak_flops()
    peak = max(peak, peak_after)  # the better of the two: MFU errs low rather than high
    ours = ours.report(peak)
    theirs = report_trl(args, config, trl_run, peak) if trl_run else None
    print(f"update MFU (over the {peak / 1e9:.0f} GFLOP/s matmul peak; {peak_after / 1e9:.0f} GFLOP/s measured again at the end): "
          f"ours {100 * ours['mfu']:.1f}% of {ours['update_flops'] / 1e9:.1f} GFLOP a step (each prompt once per group)"
          + (f", TRL {100 * theirs['mfu']:.1f}% of {theirs['update_flops'] / 1e9:.1f} GFLOP (every row whole)" if theirs else "")
          + f"; load {os.getloadavg()[0]:.1f}")
    if theirs:
        ratio = theirs["step"] / ours["step"]
        print(f"ratio (TRL s/step / ours): {ratio:.2f}x, goal >= {GOAL_RATIO:.0f}x: {'MET' if ratio >= GOAL_RATIO else 'NOT MET'}; "
              f"best-of ratio {theirs['best'] / ours['best']:.2f}x; rollout {theirs['rollout'] / ours['rollout']:.2f}x, "
              f"update {theirs['update'] / ours['update']:.2f}x")
    if other_cores is not None:
        print(f"other processes kept {other_cores:.2f} of {cores} cores busy on average during the steps"
              + ("; figures UNRELIABLE, torch's OpenMP threads slow down many times over on a shared core" if other_cores > 0.1 else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
