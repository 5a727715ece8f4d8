"""The seed's ``validate-nco``: one given checkpoint evaluated walk-forward over a quarter range, with its own report.

Quarters whose targets the checkpoint was trained on are refused, all of them named, before any
sampling starts; so are quarters without prompts. Output goes to its own directory, apart from the
walkforward assets':

    <out>/<Q>/forecasts.parquet, <out>/<Q>/completions.parquet, <out>/report/
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from cecl_pipeline.challengers.names import CHALLENGERS
from cecl_pipeline.forecast.policy_samples import SampleSettings
from cecl_pipeline.forecast.report import Report, build_report, read_forecasts
from cecl_pipeline.forecast.walkforward import Checkpoint, forecast_quarter
from cecl_pipeline.grpo.provenance import assert_not_trained_on
from cecl_pipeline.llm.checkpoint import MANIFEST
from cecl_pipeline.settings import DataLayout


def checkpoint_env(checkpoint_dir: Path, default: str = "nco") -> str:
    """The prompt environment a policy was trained on (its manifest says), else ``default``."""
    return json.loads((Path(checkpoint_dir) / MANIFEST).read_text()).get("env") or default


def validate_checkpoint(checkpoint_dir: Path, quarters: list[str], layout: DataLayout, out_dir: Path, settings: SampleSettings,
                        env: str | None = None, baselines: tuple[str, ...] = CHALLENGERS, log: Callable[[str], None] = print) -> Report:
    """Forecast every quarter with the checkpoint, beside the baselines, and write the report."""
    checkpoint_dir = Path(checkpoint_dir).resolve()
    assert_not_trained_on(checkpoint_dir, quarters)
    missing = [q for q in quarters if not layout.prompts_parquet(q).is_file()]
    if missing:
        raise FileNotFoundError(f"no nco_prompts for {', '.join(missing)} in {layout.prompts_parquet(missing[0]).parent}: "
                                f"materialize them first (cecl materialize --select nco_panel,nco_prompts --first {missing[0]} --last {missing[-1]})")
    env = env or checkpoint_env(checkpoint_dir)
    checkpoint = Checkpoint(checkpoint_dir, checkpoint_dir.name)
    paths = []
    for i, quarter in enumerate(quarters, 1):
        log(f"[{i}/{len(quarters)}] {quarter}")
        result = forecast_quarter(quarter, layout.prompts_parquet(quarter), [checkpoint], env, settings, out_dir / quarter / "forecasts.parquet",
                                  out_dir / quarter / "completions.parquet", baselines, log)
        paths.append(result.forecasts_path)
    title = f"validate-nco: {checkpoint_dir.name}, {quarters[0]}–{quarters[-1]}"
    return build_report(read_forecasts(paths), out_dir / "report", title)
