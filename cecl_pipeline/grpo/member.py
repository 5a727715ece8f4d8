"""Training one ensemble member of a quarter's policy: prompts → (SFT warm-start) → GRPO → policy directory."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cecl_pipeline.envs.registry import Env, get_env
from cecl_pipeline.files import atomic_dir, write_bytes_atomic
from cecl_pipeline.grpo.data import PromptSet, load_training_prompts
from cecl_pipeline.grpo.metrics_log import JsonlLog, MetricsLog, WandbLog, step_line
from cecl_pipeline.grpo.policy_store import JOB_FILE, METRICS_FILE
from cecl_pipeline.grpo.provenance import training_targets_through
from cecl_pipeline.grpo.rewards import ForecastReward
from cecl_pipeline.grpo.sft import STOP_WINDOW, sft_data, warm_start
from cecl_pipeline.grpo.train_checkpoints import TrainCheckpoints
from cecl_pipeline.grpo.trainer import GRPOTrainer, train
from cecl_pipeline.grpo.training_job import Log, PolicyJob
from cecl_pipeline.llm.chat_template import ChatTemplate
from cecl_pipeline.llm.checkpoint import MANIFEST, load_jax_checkpoint, save_params
from cecl_pipeline.llm.convert import copy_side_files
from cecl_pipeline.llm.prompt_tokens import encode_prompts, stop_and_pad_ids

START_PARAMS = "start"


@dataclass(frozen=True)
class TrainingData:
    """A member's training prompts, encoded with its base checkpoint's chat template, and how its answers are read."""

    prompts: PromptSet
    warm_start_answers: np.ndarray  # [n] what the warm start teaches for each prompt (``Env.warm_start_answers``)
    tokenizer: object
    eos_token_ids: tuple[int, ...]
    env: Env


def train_member(job: PolicyJob, member: int, fingerprint: str, log: Log) -> dict:
    """Train (or resume, or skip when already written) member ``member``; returns its manifest entry."""
    final = job.store.member_dir(job.quarter, member)
    if _written_fingerprint(final) == fingerprint:
        log(f"member {member}: already trained for this job → {final}")
        return _entry(final, member, job)
    work = _work_dir(job, member, fingerprint, log)
    base = job.base_dir(member)
    model_config, params = load_jax_checkpoint(base, dtype="float32")
    data = training_data(job, base, model_config)
    with TrainCheckpoints(work / "train", max_to_keep=2, save_every=job.checkpoint_every) as checkpoints:
        resuming = checkpoints.latest_step() is not None
        if resuming:
            log(f"member {member}: resuming from step {checkpoints.latest_step()}/{job.steps} in {work / 'train'}")
            _forget_metrics_after(work / METRICS_FILE, checkpoints.latest_step())
        start = starting_params(job, member, data, model_config, params, work, resuming, log)
        trainer = build_trainer(job, member, data, model_config, start, log)
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


def training_data(job: PolicyJob, base: Path, model_config) -> TrainingData:
    """The job's training prompts of its env (targets before its quarter only), rendered with the base checkpoint's chat template."""
    template = ChatTemplate(base)
    env = get_env(job.grpo.env)
    frame = load_training_prompts([Path(p) for p in job.prompt_files], env.name, job.quarter)
    tokens, valid = encode_prompts(template, frame, job.grpo.prompt_length)
    eos_token_ids, _ = stop_and_pad_ids(model_config, template.tokenizer)
    anchors, warm_start_answers = env.anchors_and_warm_start_answers(frame)
    return TrainingData(PromptSet.of_rows(tokens, valid, frame, anchors), warm_start_answers, template.tokenizer, eos_token_ids, env)


def build_trainer(job: PolicyJob, member: int, data: TrainingData, model_config, start, log: Log = print) -> GRPOTrainer:
    """Member ``member``'s trainer: its seed, the env's reward, ``start`` as the KL reference, and the job's mesh over the local devices."""
    config = replace(job.grpo, seed=job.member_seed(member))
    reward = ForecastReward(data.env.answer, config.rewards)
    mesh = training_mesh(job)
    if mesh is not None:
        log(f"member {member}: training on a {mesh.shape['data']}×{mesh.shape['fsdp']} (data × fsdp) mesh of {mesh.devices.size} devices")
    return GRPOTrainer(config, model_config, data.prompts, data.tokenizer, data.eos_token_ids, reward, reference_params=start, mesh=mesh)


def training_mesh(job: PolicyJob):
    """The job's data × fsdp mesh over the local devices, or None on a single device."""
    import jax

    from cecl_pipeline.grpo.sharding import make_mesh

    devices = jax.local_devices()
    if len(devices) == 1 and job.mesh_data == 1 and job.mesh_fsdp in (0, 1):
        return None
    return make_mesh(job.mesh_data, job.mesh_fsdp or None, devices)


def starting_params(job: PolicyJob, member: int, data: TrainingData, model_config, params, work: Path, resuming: bool, log: Log):
    """The base, or the base after the SFT warm-start (saved, so a resume reuses it): where GRPO starts, and its KL reference."""
    if job.warm_started or job.sft.steps <= 0:
        return params
    saved = work / START_PARAMS
    if (saved / MANIFEST).is_file():
        return load_jax_checkpoint(saved, dtype="float32")[1]
    if resuming:
        raise RuntimeError(f"{work}: train checkpoints without the warm-started params they began from; delete {work} to retrain")
    sft = sft_data(data.prompts, data.warm_start_answers, data.env.answer, data.tokenizer, data.eos_token_ids[0])
    every = max(job.sft.steps // 10, 1)
    log(f"member {member}: SFT warm-start, up to {job.sft.steps} steps × {job.sft.batch_size} prompts")
    sft_log = lambda m: (m["sft_step"] % every == 0 or m["sft_learned"]) and log(
        f"member {member}: SFT step {m['sft_step']}/{job.sft.steps} · loss {m['sft_loss']:.3f}"
        + (f" · learned (mean of the last {STOP_WINDOW} steps < {job.sft.stop_loss:g}): stopping" if m["sft_learned"] else ""))
    params, steps = warm_start(params, model_config, sft, job.sft, job.member_seed(member), on_step=sft_log)
    _save_checkpoint_dir(saved, params, job.base_dir(member), {"stage": "sft", "steps": steps})
    return params


def _metrics_sinks(job: PolicyJob, member: int, work: Path) -> MetricsLog:
    sinks = [JsonlLog(work / METRICS_FILE)]
    if job.wandb:
        name = f"grpo-{job.quarter}-member{member}"
        config = {**job.to_dict(), "member": member}
        sinks.append(WandbLog(job.wandb_dir, config, project=job.wandb_project or None, name=name))
    return MetricsLog(*sinks)


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
