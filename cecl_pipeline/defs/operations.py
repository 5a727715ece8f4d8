"""The operator's tasks as assets, so each run of them is recorded and shows in the web UI.

`cecl gpu-status`, `monitor`, `clean-old-checkpoints` and `validate-nco` materialize these; the
web UI does too (group ``operations``). None of them is in a job: they run when someone asks.
What a terminal should see is printed (the CLI shows it; the UI keeps it as the run's stdout) and
the figures are kept as metadata.
"""

from pathlib import Path

import dagster as dg

from cecl_pipeline.defs.metadata import refuse, report_metadata
from cecl_pipeline.defs.resources import DataPaths, JaxRuntime
from cecl_pipeline.settings import checkpoint_dir, results_dir

GROUP = "operations"


def say(context: dg.AssetExecutionContext, text: str) -> None:
    """To the terminal that launched the run (the UI keeps it as the run's stdout) and to the event log."""
    print(text, flush=True)
    context.log.info(text)


@dg.asset(group_name=GROUP, kinds={"jax"}, description="What JAX sees: backend, devices and their memory (works without a GPU).")
def device_status(context: dg.AssetExecutionContext, jax_runtime: JaxRuntime) -> dg.MaterializeResult:
    from cecl_pipeline.llm.devices import device_report, format_report

    jax_runtime.apply_in_process()  # no preallocation: a training may be using the GPU
    rows = device_report()
    say(context, format_report(rows))
    table = "\n".join(["| device | kind | GiB in use | GiB limit |", "|---|---|---:|---:|"] + [
        f"| {r['platform']}:{r['id']} | {r['kind']} | {_gib(r['bytes_in_use'])} | {_gib(r['bytes_limit'])} |" for r in rows])
    return dg.MaterializeResult(metadata={
        "backend": rows[0]["platform"], "devices": len(rows), "gpu_visible": any(r["platform"] == "gpu" for r in rows),
        "device_table": dg.MetadataValue.md(table),
    })


def _gib(value: int | None) -> str:
    return "—" if value is None else f"{value / 2**30:.2f}"


class ProgressConfig(dg.Config):
    follow: bool = False  # keep printing steps as they finish, until the member ends (or the run is stopped)
    steps: int = 0  # the training's step count, for "step k/N" (0: unknown)
    poll_seconds: float = 1.0


@dg.asset(group_name=GROUP, description="The newest training member in progress: its GRPO steps so far (followed live with follow=true).")
def training_progress(context: dg.AssetExecutionContext, config: ProgressConfig) -> dg.MaterializeResult:
    from dagster._core.errors import DagsterExecutionInterruptedError  # what Ctrl-C / "Terminate" raises in a step

    from cecl_pipeline.grpo.metrics_log import step_line
    from cecl_pipeline.grpo.monitor import follow
    from cecl_pipeline.grpo.policy_store import training_in_progress

    training = training_in_progress(checkpoint_dir())
    if training is None:
        say(context, f"no training in progress under {checkpoint_dir()}")
        return dg.MaterializeResult(metadata={"training": "none in progress"})
    quarter, member, path = training.quarter, training.member, training.metrics
    say(context, f"following grpo_policy {quarter} member {member}: {path}")
    steps = []
    try:
        for metrics in follow(path, config.poll_seconds, keep_going=lambda: config.follow):
            steps.append(metrics)
            say(context, step_line(metrics, config.steps or "?", member))
    except (DagsterExecutionInterruptedError, KeyboardInterrupt):
        context.log.info("stopped following; the training goes on")
    last = steps[-1] if steps else {}
    return dg.MaterializeResult(metadata={
        "training": f"grpo_policy {quarter} member {member}", "metrics_file": dg.MetadataValue.path(str(path)),
        "steps_seen": len(steps), **{name: last[name] for name in ("step", "reward_mean", "parse_rate", "mae", "kl") if last.get(name) is not None},
    })


class CleanupConfig(dg.Config):
    keep: int = 4  # quarters to keep per base model; the newest warm-starts the next quarter
    delete: bool = False  # False lists what would go (a dry run)


@dg.asset(group_name=GROUP, pool="gpu", description="Deletes all but the newest `keep` quarters of trained policies per base model; "
          "a dry run unless delete=true. Takes the gpu pool, so it never runs beside a training.")
def checkpoint_cleanup(context: dg.AssetExecutionContext, config: CleanupConfig) -> dg.MaterializeResult:
    from cecl_pipeline.grpo.policy_store import stale_policies

    try:
        stale = stale_policies(checkpoint_dir(), config.keep)
    except ValueError as error:
        raise refuse(error) from None
    for policy in stale:
        say(context, f"{'deleting' if config.delete else 'would delete'} {policy.path} ({policy.bytes / 2**20:.1f} MiB)")
        if config.delete:
            policy.store.remove_quarter(policy.quarter)
    outcome = "deleted" if config.delete else "to delete; run again with delete=true (cecl clean-old-checkpoints --yes) to delete them"
    say(context, f"{len(stale)} quarter(s) {outcome}; kept the newest {config.keep} per base model")
    table = "\n".join(["| policy | quarter | MiB |", "|---|---|---:|"] + [
        f"| {p.store.root.name} | {p.quarter} | {p.bytes / 2**20:.1f} |" for p in stale])
    return dg.MaterializeResult(metadata={
        "dry_run": not config.delete, "quarters": len(stale), "mib": round(sum(p.bytes for p in stale) / 2**20, 1),
        "policies": dg.MetadataValue.md(table),
    })


class ValidationConfig(dg.Config):
    checkpoint: str  # a policy member directory (checkpoints/grpo/…/<Q>/member-0) or a converted checkpoint
    start_date: str  # first quarter, e.g. 2019Q1
    end_date: str
    samples: int = 8
    max_new_tokens: int = 24
    env: str = ""  # empty: the env the checkpoint was trained on, else nco
    seed: int = 0
    out: str = ""  # empty: results/validate-nco/<checkpoint>-<start>-<end>


def validation_dir(checkpoint: Path, quarters: list[str]) -> Path:
    return results_dir() / "validate-nco" / f"{checkpoint.parent.name}-{checkpoint.name}-{quarters[0]}-{quarters[-1]}"


@dg.asset(group_name=GROUP, kinds={"jax", "parquet"}, pool="gpu",
          description="One checkpoint evaluated walk-forward over a quarter range beside the baselines (the seed's validate-nco); "
                      "quarters it was trained on are refused.")
def policy_validation(context: dg.AssetExecutionContext, config: ValidationConfig, paths: DataPaths,
                      jax_runtime: JaxRuntime) -> dg.MaterializeResult:
    from cecl_pipeline.forecast.policy_samples import SampleSettings
    from cecl_pipeline.forecast.report import headline
    from cecl_pipeline.forecast.validate_nco import validate_checkpoint
    from cecl_pipeline.quarters import quarter_range

    jax_runtime.apply_in_process()
    checkpoint = Path(config.checkpoint).resolve()
    try:
        quarters = quarter_range(config.start_date, config.end_date)
        out = Path(config.out) if config.out else validation_dir(checkpoint, quarters)
        settings = SampleSettings(samples=config.samples, max_new_tokens=config.max_new_tokens, seed=config.seed)
        report = validate_checkpoint(checkpoint, quarters, paths.layout(), out, settings, config.env or None,
                                     log=lambda text: say(context, text))
    except (FileNotFoundError, ValueError) as error:  # a look-ahead, a quarter or a checkpoint that cannot be used
        raise refuse(error) from None
    say(context, f"{headline(report)}\nreport: {report.markdown_path} (and report.html)")
    return dg.MaterializeResult(metadata={"checkpoint": dg.MetadataValue.path(str(checkpoint)), **report_metadata(report)})
