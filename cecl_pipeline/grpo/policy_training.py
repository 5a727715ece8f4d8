"""Running a ``PolicyJob``: every member trained (or resumed, or reused), then the quarter's ``policy.json``.

Resumable at every level: a member whose policy is already written for the same job is skipped, a
member with train checkpoints for the same job continues from the newest one, and anything left by
a different job (changed knobs, retrained base, new prompts) is discarded rather than mixed in.
"""

from __future__ import annotations

import shutil
import time

from cecl_pipeline.grpo.member import train_member
from cecl_pipeline.grpo.training_job import Log, PolicyJob, inputs_digest


def run_policy_job(job: PolicyJob, log: Log = print) -> dict:
    """Train every member (skipping finished ones), then write the quarter's ``policy.json``; returns it."""
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
    # Train checkpoints are only for resuming this quarter; the written policy is what later stages use.
    shutil.rmtree(job.store.quarter_dir(job.quarter) / "work", ignore_errors=True)
    return manifest
