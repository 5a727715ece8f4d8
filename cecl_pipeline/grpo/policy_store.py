"""Where trained policies live on disk: the one place that knows the layout.

    <checkpoints>/grpo/<base model>/                   one store per converted base model (``store_for``)
    <store>/<Q>/member-<k>/        the trained policy of ensemble member k, in the converted-checkpoint
                                   format (orbax params/, config and tokenizer files, manifest last)
    <store>/<Q>/work/member-<k>/   its training state: job.json, orbax train checkpoints, metrics.jsonl
    <store>/<Q>/policy.json        written last, once every member is trained: what the quarter's policy is

A quarter's policy exists only once ``policy.json`` does; the warm start of quarter Q looks for Q−1's.
Needs neither JAX nor the trainer.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from cecl_pipeline.files import write_bytes_atomic
from cecl_pipeline.quarters import to_ordinal

POLICY_MANIFEST = "policy.json"
JOB_FILE, METRICS_FILE = "job.json", "metrics.jsonl"
STORES = "grpo"  # under the checkpoint root


def store_for(checkpoint_root: Path, base_model: str) -> PolicyStore:
    """The store of policies trained from the converted base model named ``base_model``."""
    return PolicyStore(Path(checkpoint_root) / STORES / base_model)


@dataclass(frozen=True)
class PolicyStore:
    root: Path

    def quarter_dir(self, quarter: str) -> Path:
        return self.root / quarter

    def member_dir(self, quarter: str, member: int) -> Path:
        return self.quarter_dir(quarter) / f"member-{member}"

    def work_dir(self, quarter: str, member: int) -> Path:
        return self.quarter_dir(quarter) / "work" / f"member-{member}"

    def manifest_path(self, quarter: str) -> Path:
        return self.quarter_dir(quarter) / POLICY_MANIFEST

    def read_manifest(self, quarter: str) -> dict | None:
        """The quarter's policy manifest, or None when no complete policy exists for it."""
        path = self.manifest_path(quarter)
        return json.loads(path.read_text()) if path.is_file() else None

    def write_manifest(self, quarter: str, manifest: dict) -> Path:
        path = self.manifest_path(quarter)
        write_bytes_atomic(path, json.dumps(manifest, indent=2).encode())
        return path

    def member_dirs(self, quarter: str) -> list[Path]:
        """The member directories of the quarter's complete policy (empty when there is none)."""
        manifest = self.read_manifest(quarter)
        return [Path(m["path"]) for m in manifest["members"]] if manifest else []

    def quarters(self) -> list[str]:
        """Quarters with a complete policy, oldest first (a quarter still training has no manifest and is left out)."""
        found = [p.parent.name for p in self.root.glob(f"*/{POLICY_MANIFEST}")]
        return sorted(found, key=to_ordinal)

    def remove_quarter(self, quarter: str) -> None:
        """Delete a quarter's policy so that an interruption never leaves something that passes for one."""
        self.manifest_path(quarter).unlink(missing_ok=True)  # from here on the quarter is no policy, whatever happens next
        trash = self.root / REMOVING
        if trash.exists():  # an interrupted earlier removal; it may hold this very quarter, retrained since
            shutil.rmtree(trash)
        trash.mkdir()
        self.quarter_dir(quarter).rename(trash / quarter)
        shutil.rmtree(trash)


# Outside the <Q>/ pattern, so nothing reads a half-removed quarter as a policy or a training.
REMOVING = ".removing"


@dataclass(frozen=True)
class StalePolicy:
    store: PolicyStore
    quarter: str
    bytes: int

    @property
    def path(self) -> Path:
        return self.store.quarter_dir(self.quarter)


def stale_policies(checkpoint_root: Path, keep: int) -> list[StalePolicy]:
    """For every base model's store, its complete quarters older than the newest ``keep``, with their size."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1 (the newest policy warm-starts the next quarter), got {keep}")
    stale = []
    for store in map(PolicyStore, sorted((Path(checkpoint_root) / STORES).glob("*/"))):
        for quarter in store.quarters()[:-keep]:
            size = sum(f.stat().st_size for f in store.quarter_dir(quarter).rglob("*") if f.is_file())
            stale.append(StalePolicy(store, quarter, size))
    return stale



@dataclass(frozen=True)
class MemberTraining:
    """A member still training: its quarter, member index and metrics file."""

    quarter: str
    member: int
    metrics: Path


def training_in_progress(checkpoint_root: Path) -> MemberTraining | None:
    """The member of any store whose metrics file was written most recently, while it is still training."""
    files = list((Path(checkpoint_root) / STORES).glob(f"*/*/work/member-*/{METRICS_FILE}"))
    if not files:
        return None
    newest = max(files, key=lambda p: p.stat().st_mtime_ns)
    return MemberTraining(newest.parents[2].name, int(newest.parent.name.removeprefix("member-")), newest)
