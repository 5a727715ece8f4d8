"""The training process behind ``grpo_policy``: ``python -m cecl_pipeline.defs.grpo_process``.

Launched by Dagster Pipes (locally as a subprocess; the same command can run in a GPU pod). It needs
only ``dagster_pipes`` — not the Dagster framework — and the library: the job arrives as the ``job``
extra, progress goes back as log lines, and the result as the asset's materialization metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

from dagster_pipes import open_dagster_pipes

CURVE_COLUMNS = ("step", "reward_mean", "parse_rate", "mae", "kl", "entropy", "grad_norm", "step_seconds")


def main() -> None:
    with open_dagster_pipes() as pipes:
        from cecl_pipeline.grpo.policy_training import run_policy_job
        from cecl_pipeline.grpo.training_job import PolicyJob

        job = PolicyJob.from_dict(pipes.get_extra("job"))
        pipes.log.info(f"grpo_policy {job.quarter}: {job.members} member(s) × {job.steps} GRPO steps on {len(job.prompt_files)} prompt file(s), "
                       f"{'warm start from the previous policy' if job.warm_started else 'from the base checkpoint'}")
        manifest = run_policy_job(job, log=pipes.log.info)
        pipes.report_asset_materialization(metadata=materialization_metadata(manifest, job.store.manifest_path(job.quarter)))


def materialization_metadata(manifest: dict, path: Path) -> dict:
    """Figures of the finished policy: first and last step of each member, and member 0's learning curve."""
    members = manifest["members"]
    first = [m["first_step"] or {} for m in members]
    last = [m["last_step"] or {} for m in members]
    mean = lambda rows, key: _mean([r.get(key) for r in rows])
    metadata = {
        "path": {"raw_value": str(path), "type": "path"},
        "members": len(members),
        "steps": manifest["steps"],
        "env": manifest["env"],
        "warm_started": manifest["warm_started"],
        "seconds": manifest["seconds"],
        "reward_mean_first": mean(first, "reward_mean"),
        "reward_mean_last": mean(last, "reward_mean"),
        "mae_first": mean(first, "mae"),
        "mae_last": mean(last, "mae"),
        "parse_rate_last": mean(last, "parse_rate"),
        "curve": {"raw_value": _curve_markdown(members[0]["path"]), "type": "md"},
    }
    return {k: v for k, v in metadata.items() if v is not None}


def _mean(values: list) -> float | None:
    numbers = [float(v) for v in values if v is not None]
    return round(sum(numbers) / len(numbers), 4) if numbers else None


def _curve_markdown(member_dir: str, max_rows: int = 40) -> str:
    from cecl_pipeline.grpo.policy_store import METRICS_FILE

    rows = [json.loads(line) for line in (Path(member_dir) / METRICS_FILE).read_text().splitlines()]
    stride = max(len(rows) // max_rows, 1)
    shown = rows[::stride] if rows[-1:] == rows[::stride][-1:] else rows[::stride] + rows[-1:]
    cell = lambda v: "—" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(CURVE_COLUMNS) + " |", "|" + "---|" * len(CURVE_COLUMNS)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in CURVE_COLUMNS) + " |" for r in shown]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
