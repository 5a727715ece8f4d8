"""Launch materializations in process against the persistent instance, one run per quarter, in order.

The CLI calls this so every command is a real Dagster run that shows up in the web UI.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from cecl_pipeline.defs.partitions import check_partitions
from cecl_pipeline.quarters import to_partition_key

# The CLI prints one line per run; the full event log stays in the instance and the web UI.
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass
class RunSummary:
    label: str
    success: bool
    run_id: str
    checks_passed: int
    checks_total: int
    failed_checks: list[str]
    error: str = ""

    def line(self) -> str:
        checks = f" · checks {self.checks_passed}/{self.checks_total}" if self.checks_total else ""
        if self.success and not self.failed_checks:
            return f"✓ {self.label}{checks}"
        detail = self.error or "failed checks: " + ", ".join(self.failed_checks)
        return f"✗ {self.label}{checks} — {detail}"


def home_instance() -> dg.DagsterInstance:
    """The instance in DAGSTER_HOME, opened by one process at a time.

    Opening a new instance creates its tables. Two processes doing that at once (two commands
    started together) can leave SQLite's alembic_version with two heads, and the instance would
    never open again.
    """
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return dg.DagsterInstance.get()  # which says, in its own words, that DAGSTER_HOME must be set
    with open(Path(home) / ".cecl-instance.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return dg.DagsterInstance.get()


def _all_assets():
    from cecl_pipeline.defs.graph import defs

    return defs, list(defs.assets or [])


def run_assets(
    selection: Sequence[str], quarter: str | None = None, instance: dg.DagsterInstance | None = None, run_config: dict | None = None
) -> dg.ExecuteInProcessResult:
    """One in-process run of ``selection`` (asset names) for a quarter, or unpartitioned when ``quarter`` is None."""
    check_partitions([quarter] if quarter else [])
    defs, assets = _all_assets()
    config = {**QUIET_LOGS, **(run_config or {})}
    instance = instance or home_instance()
    with own_defs_state(instance):
        return dg.materialize(
            assets,
            selection=list(selection),
            partition_key=to_partition_key(quarter) if quarter else None,
            instance=instance,
            resources=defs.resources,
            run_config=config,
            raise_on_error=False,
            tags={"cecl/quarter": quarter} if quarter else None,
        )


def own_defs_state(instance: dg.DagsterInstance):
    """Resolve definitions against ``instance``'s own state storage while a run builds them.

    Dagster keeps "the current defs-state storage" in a context variable that each instance sets on
    entering and restores on leaving; instances left in another order than entered (two tests' fixtures,
    say) leave it pointing at a closed one, and the next definitions built in that thread fail with
    "Attempted to resolve undefined DagsterInstance weakref".
    """
    from dagster._core.storage.defs_state.base import set_defs_state_storage  # not exported at the top level in 1.13

    return set_defs_state_storage(instance.defs_state_storage)


def run_job(name: str, quarter: str | None = None, instance: dg.DagsterInstance | None = None, run_config: dict | None = None) -> RunSummary:
    """One in-process run of the named job (see defs/jobs.py), for a quarter when it is partitioned."""
    check_partitions([quarter] if quarter else [])
    defs, _ = _all_assets()
    instance = instance or home_instance()
    with own_defs_state(instance):
        result = defs.resolve_job_def(name).execute_in_process(
            run_config={**QUIET_LOGS, **(run_config or {})},
            instance=instance,
            partition_key=to_partition_key(quarter) if quarter else None,
            raise_on_error=False,
            tags={"cecl/quarter": quarter} if quarter else None,
        )
    return _summarise(result, f"{name} {quarter or ''}".strip())


def materialize(
    selection: Sequence[str], quarter: str | None = None, instance: dg.DagsterInstance | None = None, run_config: dict | None = None
) -> RunSummary:
    result = run_assets(selection, quarter, instance, run_config)
    return _summarise(result, f"{'+'.join(selection)} {quarter or ''}".strip())


def materialize_quarters(
    selection: Sequence[str], quarters: Sequence[str], instance: dg.DagsterInstance | None = None, progress: Callable[[str], None] = print,
    run_config: dict | None = None, job: str | None = None,
) -> list[RunSummary]:
    """One run per quarter, oldest first, of ``selection`` (or of the named ``job``); stops at the first failure
    because later quarters build on earlier ones."""
    check_partitions(quarters)  # all of them before the first run
    summaries = []
    for i, quarter in enumerate(quarters, 1):
        summary = run_job(job, quarter, instance, run_config) if job else materialize(selection, quarter, instance, run_config)
        progress(f"[{i}/{len(quarters)}] {summary.line()}")
        summaries.append(summary)
        if not summary.success:
            if i < len(quarters):
                progress(f"stopped: {len(quarters) - i} later quarter(s) not run; see run {summary.run_id} in the web UI")
            break
    return summaries


def _summarise(result: dg.ExecuteInProcessResult, label: str) -> RunSummary:
    evaluations = result.get_asset_check_evaluations()
    failed = [f"{e.check_name}" for e in evaluations if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]
    return RunSummary(
        label=label,
        success=result.success and not failed,
        run_id=result.run_id,
        checks_passed=sum(e.passed for e in evaluations),
        checks_total=len(evaluations),
        failed_checks=failed,
        error=_failure_message(result),
    )


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        if data.user_failure_data and data.user_failure_data.description:
            return data.user_failure_data.description
        if data.error:
            return data.error.message.strip()
    return ""
