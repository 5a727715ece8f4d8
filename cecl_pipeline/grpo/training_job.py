"""One quarter's policy training as a JSON-able job: what the training process (a subprocess or a GPU pod) is handed.

``PolicyJob`` says everything the run needs (quarter, prompt files, starting checkpoints, knobs).
``PolicyJob.for_quarter`` builds it from knob values and the files on disk; ``policy_training``
runs it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cecl_pipeline.files import sha256_file
from cecl_pipeline.grpo import knobs
from cecl_pipeline.grpo.knobs import default
from cecl_pipeline.grpo.loss import GRPOLossConfig
from cecl_pipeline.grpo.optim import OptimizerConfig
from cecl_pipeline.grpo.policy_store import PolicyStore
from cecl_pipeline.grpo.rewards import RewardConfig
from cecl_pipeline.grpo.sft import SFTConfig
from cecl_pipeline.grpo.trainer import GRPOConfig
from cecl_pipeline.llm.checkpoint import MANIFEST
from cecl_pipeline.quarters import quarter_range, shift

Log = Callable[[str], None]

_NESTED = {"loss": GRPOLossConfig, "optimizer": OptimizerConfig, "rewards": RewardConfig}


def grpo_config_from_dict(values: dict) -> GRPOConfig:
    """A GRPOConfig from its ``asdict`` form (or the knobs' ``grpo`` branch); unknown keys are refused by the constructors."""
    return GRPOConfig(**{k: _NESTED[k](**v) if k in _NESTED else v for k, v in values.items()})


@dataclass(frozen=True)
class PolicyJob:
    quarter: str  # the policy serves this quarter: it trains on targets strictly before it
    prompt_files: tuple[str, ...]
    base_dirs: tuple[str, ...]  # starting checkpoint(s); member k starts from base_dirs[k % len]
    store_root: str
    steps: int = default("steps")
    checkpoint_every: int = default("checkpoint_every")
    members: int = default("members")
    train_quarters: int = default("train_quarters")
    warm_started: bool = False  # base_dirs are the previous quarter's policy (then no SFT)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    mesh_data: int = default("mesh_data")
    mesh_fsdp: int = default("mesh_fsdp")
    wandb: bool = default("wandb")
    wandb_dir: str = ""
    wandb_project: str = ""

    @classmethod
    def for_quarter(cls, quarter: str, values: dict, prompt_file: Callable[[str], Path], base_dir: Path, store: PolicyStore,
                    wandb_dir: Path) -> PolicyJob:
        """The job for ``quarter`` with knob ``values`` (defaults for the rest): the prompt files of the
        ``train_quarters`` before it, and the previous quarter's policy to start from, else ``base_dir``."""
        tree = knobs.nested(values)
        window = quarter_range(shift(quarter, -tree["train_quarters"]), shift(quarter, -1))
        files = [path for path in map(prompt_file, window) if path.is_file()]
        if not files:
            raise FileNotFoundError(f"no nco_prompts for {window[0]}–{window[-1]} in {prompt_file(window[-1]).parent}: materialize "
                                    f"them first (cecl materialize --select nco_prompts --first {window[0]} --last {window[-1]})")
        if not (base_dir / MANIFEST).is_file():
            raise FileNotFoundError(f"{base_dir}: no converted checkpoint; materialize jax_checkpoint first (cecl convert-model)")
        previous = store.member_dirs(shift(quarter, -1))
        grpo = dict(tree["grpo"])
        # The schedule's length follows the run's; it is not a knob of its own.
        grpo["optimizer"] = {**grpo["optimizer"], "total_steps": max(tree["steps"], grpo["optimizer"]["warmup_steps"] + 1)}
        return cls(quarter=quarter, prompt_files=tuple(str(f) for f in files), base_dirs=tuple(str(d) for d in previous) or (str(base_dir),),
                   store_root=str(store.root), steps=tree["steps"], checkpoint_every=tree["checkpoint_every"], members=tree["members"],
                   train_quarters=tree["train_quarters"], warm_started=bool(previous), grpo=grpo_config_from_dict(grpo),
                   sft=SFTConfig(**tree["sft"]), mesh_data=tree["mesh_data"], mesh_fsdp=tree["mesh_fsdp"], wandb=tree["wandb"],
                   wandb_dir=str(wandb_dir))

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
        # Ensemble size, logging, checkpoint spacing and the device mesh do not change what a member learns (a mesh changes
        # float rounding only), so a training resumes on another device count.
        recipe = {**self.to_dict(), "member": member, "members": None, "wandb": None, "wandb_dir": None, "wandb_project": None,
                  "checkpoint_every": None, "mesh_data": None, "mesh_fsdp": None, "inputs": inputs_digest}
        return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def inputs_digest(job: PolicyJob) -> str:
    """sha256 over the prompt files and the starting checkpoints' manifests (their own content hashes)."""
    parts = [sha256_file(Path(p)) for p in job.prompt_files] + [sha256_file(Path(d) / MANIFEST) for d in job.base_dirs]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
