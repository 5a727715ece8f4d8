"""From the walk-forward assets' config and the files on disk to the library calls that forecast and report."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cecl_pipeline.forecast.policy_samples import SampleSettings
from cecl_pipeline.forecast.report import Report, build_report, read_forecasts
from cecl_pipeline.forecast.walkforward import Checkpoint, QuarterForecast, forecast_quarter
from cecl_pipeline.grpo.policy_store import PolicyStore
from cecl_pipeline.settings import DataLayout

REPORT_TITLE = "Walk-forward evaluation: GRPO policy vs challengers"


@dataclass(frozen=True)
class ServingPolicy:
    """grpo_policy[Q] as the forecasts sample it: its members, its env and the sampling settings it was trained to answer with."""

    checkpoints: list[Checkpoint]
    env: str
    settings: SampleSettings


def serving_policy(quarter: str, config, store: PolicyStore, why: str = "") -> ServingPolicy:
    """grpo_policy[Q]'s members and settings, or a FileNotFoundError that says how to make it."""
    manifest = store.read_manifest(quarter)
    if manifest is None:
        raise FileNotFoundError(f"no grpo_policy for {quarter}{why} in {store.quarter_dir(quarter)}: materialize it first (cecl train --first {quarter})")
    checkpoints = [Checkpoint(Path(m["path"]), f"{store.root.name}/{quarter}/member-{m['member']}") for m in manifest["members"]]
    trained = manifest["job"]["grpo"]
    settings = SampleSettings(samples=config.samples, temperature=config.temperature, max_new_tokens=trained["num_generation_tokens"],
                              prompt_length=trained["prompt_length"], batch=config.inference_batch, seed=config.seed)
    return ServingPolicy(checkpoints, manifest["env"], settings)


def forecast_policy_quarter(quarter: str, config, layout: DataLayout, store: PolicyStore, log: Callable[[str], None]) -> QuarterForecast:
    """Forecast Q with every member of grpo_policy[Q], sampling as the policy was trained to answer."""
    policy = serving_policy(quarter, config, store)
    return forecast_quarter(quarter, layout.prompts_parquet(quarter), policy.checkpoints, policy.env, policy.settings,
                            layout.forecasts_parquet(quarter), layout.completions_parquet(quarter), tuple(config.baselines), log)


def report_all_quarters(layout: DataLayout, directory: Path) -> Report:
    return build_report(read_forecasts(layout.forecast_files()), directory, REPORT_TITLE)
