"""The run config every automated run carries: the schedule's, the drop-file sensor's and the quarter-end sensor's.

A team running the daemon sets its production knobs once, in a Dagster run-config YAML named by
CECL_AUTOMATION_RUN_CONFIG (the launchpad's shape: ``ops: {grpo_policy: {config: {steps: 400}}}``).
Each run request takes the entries for the assets its job runs, so one file serves every job.
"""

import os
from collections.abc import Iterable
from pathlib import Path

import dagster as dg
import yaml

AUTOMATION_RUN_CONFIG = "CECL_AUTOMATION_RUN_CONFIG"


class AutomationConfigError(ValueError):
    """The automation run-config file cannot be used; the message names the file and what is wrong."""


def automation_run_config(assets: Iterable[dg.AssetKey]) -> dict:
    """The ``ops`` entries of the CECL_AUTOMATION_RUN_CONFIG file for ``assets`` (empty without the file)."""
    name = os.environ.get(AUTOMATION_RUN_CONFIG, "").strip()
    if not name:
        return {}
    ops = _read_ops(Path(name))
    chosen = {key.to_user_string(): ops[key.to_user_string()] for key in assets if key.to_user_string() in ops}
    return {"ops": chosen} if chosen else {}


def job_assets(job) -> list[dg.AssetKey]:
    """The assets a job runs (its selection names them: define_asset_job with AssetSelection.assets)."""
    return list(job.selection.selected_keys)


def _read_ops(path: Path) -> dict:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AutomationConfigError(f"{AUTOMATION_RUN_CONFIG}={path}: no such file") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise AutomationConfigError(f"{path}: not valid YAML ({error})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict) or set(loaded) - {"ops"} or not isinstance(loaded.get("ops", {}), dict):
        raise AutomationConfigError(f"{path}: expected a run config with one top-level key, ops (ops: {{grpo_policy: {{config: {{…}}}}}}), "
                                    f"got {sorted(loaded) if isinstance(loaded, dict) else type(loaded).__name__}")
    return loaded.get("ops", {})
