"""One quarter's policy training, as a JSON-able job: the entry point a subprocess or a GPU pod runs.

``PolicyJob`` says everything the run needs (quarter, prompt files, starting checkpoints, knobs);
``run_policy_job`` trains each ensemble member and writes the quarter's policy. It is resumable at
every level: a member whose policy is already written for the same job is skipped, a member with
train checkpoints for the same job continues from the newest one, and anything left by a different
job (changed knobs, retrained base, new prompts) is discarded rather than mixed in.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cecl_pipeline.grpo.loss import GRPOLossConfig
from cecl_pipeline.grpo.optim import OptimizerConfig
from cecl_pipeline.grpo.policy_store import PolicyStore
from cecl_pipeline.grpo.rewards import RewardConfig
from cecl_pipeline.grpo.sft import SFTConfig
from cecl_pipeline.grpo.trainer import GRPOConfig

Log = Callable[[str], None]


_NESTED = {"loss": GRPOLossConfig, "optimizer": OptimizerConfig, "rewards": RewardConfig}


def grpo_config_from_dict(values: dict) -> GRPOConfig:
    """A GRPOConfig from its ``asdict`` form; unknown keys are refused by the constructors."""
    return GRPOConfig(**{k: _NESTED[k](**v) if k in _NESTED else v for k, v in values.items()})


@dataclass(frozen=True)
class PolicyJob:
    quarter: str  # the policy serves this quarter: it trains on targets strictly before it
    prompt_files: tuple[str, ...]
    base_dirs: tuple[str, ...]  # starting checkpoint(s); member k starts from base_dirs[k % len]
    store_root: str
    steps: int = 20
    checkpoint_every: int = 4
    members: int = 1
    warm_started: bool = False  # base_dirs are the previous quarter's policy (then no SFT)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    wandb_dir: str = ""  # empty: no W&B run
    wandb_project: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> PolicyJob:
        values = dict(values)
        values["grpo"] = grpo_config_from_dict(values.get("grpo", {}))
        values["sft"] = SFTConfig(**values.get("sft", {}))
        values["prompt_files"] = tuple(values["prompt_files"])
        values["base_dirs"] = tuple(values["base_dirs"])
        return cls(**values)

    @property
    def store(self) -> PolicyStore:
        return PolicyStore(Path(self.store_root))

    def base_dir(self, member: int) -> Path:
        """The checkpoint member ``member`` starts from."""
        return Path(self.base_dirs[member % len(self.base_dirs)])

    def member_seed(self, member: int) -> int:
        return self.grpo.seed + member

    def fingerprint(self, member: int, inputs_digest: str) -> str:
        """What makes member ``member``'s training this training: knobs, its seed and the inputs' content."""
        # Ensemble size, logging and checkpoint spacing do not change what a member learns.
        recipe = {**self.to_dict(), "member": member, "members": None, "wandb_dir": None, "wandb_project": None, "checkpoint_every": None,
                  "inputs": inputs_digest}
        return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def inputs_digest(job: PolicyJob) -> str:
    """sha256 over the prompt files and the starting checkpoints' manifests (their own content hashes)."""
    from cecl_pipeline.files import sha256_file
    from cecl_pipeline.llm.checkpoint import MANIFEST

    parts = [sha256_file(Path(p)) for p in job.prompt_files] + [sha256_file(Path(d) / MANIFEST) for d in job.base_dirs]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def run_policy_job(job: PolicyJob, log: Log = print) -> dict:
    """Train every member (skipping finished ones), then write the quarter's ``policy.json``; returns it."""
    from cecl_pipeline.grpo.member import train_member

    started = time.perf_counter()
    digest = inputs_digest(job)
    members = [train_member(job, k, job.fingerprint(k, digest), log) for k in range(job.members)]
    manifest = {
        "quarter": job.quarter,
        "members": members,
        "warm_started": job.warm_started,
        "base_dirs": list(job.base_dirs),
        "prompt_files": list(job.prompt_files),
        "env": job.grpo.env,
        "steps": job.steps,
        "seconds": round(time.perf_counter() - started, 1),
        "job": job.to_dict(),
    }
    job.store.write_manifest(job.quarter, manifest)
    _drop_work_dirs(job)
    return manifest


def _drop_work_dirs(job: PolicyJob) -> None:
    # Train checkpoints are only for resuming this quarter; the written policy is what later stages use.
    shutil.rmtree(job.store.quarter_dir(job.quarter) / "work", ignore_errors=True)
