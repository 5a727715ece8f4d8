"""Training one ensemble member of a quarter's policy: prompts → (SFT warm-start) → GRPO → policy directory."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from cecl_pipeline.files import atomic_dir, write_bytes_atomic
from cecl_pipeline.grpo.checkpoints import TrainCheckpoints
from cecl_pipeline.grpo.data import load_training_prompts, tokenize_left_padded
from cecl_pipeline.grpo.job import Log, PolicyJob
from cecl_pipeline.grpo.metrics_log import JsonlLog, MetricsLog, WandbLog
from cecl_pipeline.grpo.provenance import training_targets_through
from cecl_pipeline.grpo.sft import sft_data, warm_start
from cecl_pipeline.grpo.trainer import GRPOTrainer, train
from cecl_pipeline.llm.chat_template import ChatTemplate
from cecl_pipeline.llm.checkpoint import MANIFEST, load_jax_checkpoint, save_params
from cecl_pipeline.llm.convert import copy_side_files

JOB_FILE, METRICS_FILE, START_PARAMS = "job.json", "metrics.jsonl", "start"
PROMPT_WIDTH_MULTIPLE = 16  # prompt tensors are padded to a multiple of this, not to prompt_length


def train_member(job: PolicyJob, member: int, fingerprint: str, log: Log) -> dict:
    """Train (or resume, or skip when already written) member ``member``; returns its manifest entry."""
    final = job.store.member_dir(job.quarter, member)
    if _written_fingerprint(final) == fingerprint:
        log(f"member {member}: already trained for this job → {final}")
        return _entry(final, member, job)
    work = _work_dir(job, member, fingerprint, log)
    base = job.base_dir(member)
    model_config, params = load_jax_checkpoint(base, dtype="float32")
    trainer = build_trainer(job, member, base, model_config)
    with TrainCheckpoints(work / "train", max_to_keep=2, save_every=job.checkpoint_every) as checkpoints:
        resuming = checkpoints.latest_step() is not None
        if resuming:
            log(f"member {member}: resuming from step {checkpoints.latest_step()}/{job.steps} in {work / 'train'}")
            _forget_metrics_after(work / METRICS_FILE, checkpoints.latest_step())
        start = starting_params(job, member, trainer, params, work, resuming, log)
        with _metrics_sinks(job, member, work) as metrics:
            state = train(trainer, start, job.steps, checkpoints, on_step=lambda m: (metrics(m), log(step_line(m, job.steps, member))))
    _write_policy(final, state["params"], base, work, fingerprint, job, member)
    log(f"member {member}: policy written → {final}")
    return _entry(final, member, job)


def _work_dir(job: PolicyJob, member: int, fingerprint: str, log: Log) -> Path:
    """The member's work directory, emptied first when it holds another job's state."""
    work = job.store.work_dir(job.quarter, member)
    recorded = work / JOB_FILE
    if work.exists() and (not recorded.is_file() or json.loads(recorded.read_text()).get("fingerprint") != fingerprint):
        log(f"member {member}: discarding train state from a different job in {work}")
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    if not recorded.is_file():
        write_bytes_atomic(recorded, json.dumps({"fingerprint": fingerprint, "job": job.to_dict(), "member": member}, indent=2).encode())
    return work


def _forget_metrics_after(path: Path, step: int) -> None:
    """Drop logged steps after ``step``: the resumed run redoes them, and each step should appear once."""
    if path.is_file():
        kept = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= step]
        write_bytes_atomic(path, "".join(f"{line}\n" for line in kept).encode())


def build_trainer(job: PolicyJob, member: int, base: Path, model_config) -> GRPOTrainer:
    """The member's trainer over the job's training prompts, rendered with the base checkpoint's chat template."""
    config = replace(job.grpo, seed=job.member_seed(member))
    template = ChatTemplate(base)
    prompts = load_training_prompts([Path(p) for p in job.prompt_files], config.env, job.quarter)
    tokens, valid = encode_prompts(template, prompts, config.prompt_length)
    tokenizer = template.tokenizer
    return GRPOTrainer(config, model_config, tokenizer, tokens, valid, prompts["target"].to_numpy(np.float64), *stop_and_pad_ids(model_config, tokenizer))


def stop_and_pad_ids(model_config, tokenizer) -> tuple[tuple[int, ...], int]:
    """The EOS ids a completion stops at (the model's) and the pad id (the tokenizer's)."""
    eos = model_config.eos_token_id
    return (() if eos is None else (int(eos),)), tokenizer.pad_token_id


def render_prompts(template: ChatTemplate, prompts) -> list[str]:
    """The prompt rows' system + user text in the model's chat template: exactly what the model reads."""
    return template.render(pa.array(prompts["system"], pa.string()), pa.array(prompts["user"], pa.string())).to_pylist()


def encode_prompts(template: ChatTemplate, prompts, prompt_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Left-padded token ids and validity of the rendered prompt rows."""
    return encode_texts(template, render_prompts(template, prompts), list(prompts["prompt_id"]), prompt_length)


def encode_texts(template: ChatTemplate, texts: list[str], ids: list[str], prompt_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Left-padded token ids and validity of already rendered prompt ``texts`` (``ids`` name them in errors)."""
    pad = template.tokenizer.pad_token_id
    return tokenize_left_padded(texts, template.tokenizer, prompt_length, pad, ids, fit_multiple=PROMPT_WIDTH_MULTIPLE)


def starting_params(job: PolicyJob, member: int, trainer: GRPOTrainer, params, work: Path, resuming: bool, log: Log):
    """The params GRPO starts from, which are also the trainer's KL reference when beta > 0."""
    start = _warm_started(job, member, trainer, params, work, resuming, log)
    trainer.reference_params = start if job.grpo.loss.beta > 0 else None
    return start


def _warm_started(job: PolicyJob, member: int, trainer: GRPOTrainer, params, work: Path, resuming: bool, log: Log):
    """The base, or the base after the SFT warm-start (saved, so a resume reuses it)."""
    if job.warm_started or job.sft.steps <= 0:
        return params
    saved = work / START_PARAMS
    if (saved / MANIFEST).is_file():
        return load_jax_checkpoint(saved, dtype="float32")[1]
    if resuming:
        raise RuntimeError(f"{work}: train checkpoints without the warm-started params they began from; delete {work} to retrain")
    data = sft_data(trainer.tokens, trainer.valid, trainer.targets, trainer.tokenizer, trainer.sampling.eos_token_ids[0],
                    trainer.sampling.pad_token_id, job.sft.decimals)
    every = max(job.sft.steps // 10, 1)
    log(f"member {member}: SFT warm-start, {job.sft.steps} steps × {job.sft.batch_size} prompts")
    sft_log = lambda m: m["sft_step"] % every == 0 and log(f"member {member}: SFT step {m['sft_step']}/{job.sft.steps} · loss {m['sft_loss']:.3f}")
    params = warm_start(params, trainer.model_config, data, job.sft, job.member_seed(member), on_step=sft_log)
    _save_checkpoint_dir(saved, params, job.base_dir(member), {"stage": "sft", "steps": job.sft.steps})
    return params


def _metrics_sinks(job: PolicyJob, member: int, work: Path) -> MetricsLog:
    sinks = [JsonlLog(work / METRICS_FILE)]
    if job.wandb_dir:
        name = f"grpo-{job.quarter}-member{member}"
        config = {**job.to_dict(), "member": member}
        sinks.append(WandbLog(job.wandb_dir, config, project=job.wandb_project or None, name=name))
    return MetricsLog(*sinks)


def step_line(m: dict, steps: int, member: int) -> str:
    """One progress line per GRPO step, for the run log."""
    mae = "—" if m["mae"] is None else f"{m['mae']:.3f} pp"
    return (f"member {member}: GRPO step {m['step']}/{steps} · reward {m['reward_mean']:+.3f} ± {m['reward_std']:.3f} · "
            f"parsed {m['parse_rate']:.0%} · MAE {mae} · KL {m['kl']:.4f} · clip {m['clip_fraction']:.2f} · "
            f"{m['tokens_per_second']:.0f} tok/s · MFU {m['mfu']:.1%} · {m['step_seconds']:.1f} s")


def _save_checkpoint_dir(final: Path, params, base: Path, manifest: dict, extra_files: tuple[Path, ...] = ()) -> None:
    """Params in the converted-checkpoint layout (loadable by ``load_jax_checkpoint``), all or nothing."""
    import jax

    with atomic_dir(final) as staging:
        save_params(jax.tree.map(lambda x: np.asarray(x), params), staging / "params")
        copy_side_files(base, staging)
        for path in extra_files:
            shutil.copyfile(path, staging / path.name)
        (staging / MANIFEST).write_text(json.dumps({"dtype": "float32", **manifest}, indent=2))  # last: marks it complete


def _write_policy(final: Path, params, base: Path, work: Path, fingerprint: str, job: PolicyJob, member: int) -> None:
    manifest = {"created_by": "cecl_pipeline.grpo", "fingerprint": fingerprint, "quarter": job.quarter, "member": member,
                "seed": job.member_seed(member), "steps": job.steps, "base": str(base),
                "trained_through": training_targets_through(job.prompt_files, base), "env": job.grpo.env}
    _save_checkpoint_dir(final, params, base, manifest, extra_files=(work / METRICS_FILE,))


def _written_fingerprint(final: Path) -> str | None:
    manifest = final / MANIFEST
    return json.loads(manifest.read_text()).get("fingerprint") if manifest.is_file() else None


def _entry(final: Path, member: int, job: PolicyJob) -> dict:
    """The member's line in policy.json: where it is, and its first and last logged GRPO step."""
    lines = (final / METRICS_FILE).read_text().splitlines() if (final / METRICS_FILE).is_file() else []
    steps = [json.loads(line) for line in lines]
    return {"member": member, "seed": job.member_seed(member), "path": str(final),
            "first_step": steps[0] if steps else None, "last_step": steps[-1] if steps else None}
