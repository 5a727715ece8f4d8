"""The ``cecl`` command: short, friendly tasks over the Dagster graph.

Every task that builds data runs as a Dagster materialization against the instance in
DAGSTER_HOME (default: .dagster_home/ in the project), so it also shows up in the web UI.
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from cecl_pipeline import quarters as q
from cecl_pipeline.settings import (
    DEFAULT_HORIZON,
    DEFAULT_LOOKBACK,
    DEFAULT_PATHS,
    DEFAULT_REVERSION_QUARTERS,
    DEFAULT_TARGET_QUARTERS,
    DEFAULT_TRAIN_QUARTERS,
    PROJECT_ROOT,
    data_layout,
    default_dagster_home,
    instance_yaml,
)


def prepare_dagster_home() -> Path:
    """Default DAGSTER_HOME to the project's folder and link the project's instance settings into it.

    A dagster.yaml of the user's own (a file, or a link to elsewhere) is left alone; our own link is
    re-pointed when DAGSTER_PG_URL switches between SQLite and PostgreSQL.
    """
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(default_dagster_home())))
    home.mkdir(parents=True, exist_ok=True)
    config, wanted = home / "dagster.yaml", instance_yaml()
    ours = config.is_symlink() and Path(os.readlink(config)).parent == PROJECT_ROOT
    if ours and Path(os.readlink(config)) != wanted:
        config.unlink()
    if not config.exists() and not config.is_symlink():
        config.symlink_to(wanted)
    return home


class UsageError(ValueError):
    """A command-line value that cannot be used; main prints it and exits 2."""


def policy_run_config(items: list[str] | None) -> dict | None:
    """grpo_policy's run config from ``--set KNOB=VALUE`` items (None when there are none); a bad one is refused by name."""
    from cecl_pipeline.grpo.knobs import KnobError, parse_assignments

    try:
        knobs = parse_assignments(items or [])
    except KnobError as error:
        raise UsageError(str(error)) from None
    return {"ops": {"grpo_policy": {"config": knobs}}} if knobs else None


def with_progress(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Runs ``command`` while printing, every few seconds, what its runs log (step k/N, reward, MAE, ETA)."""

    @functools.wraps(command)
    def wrapped(args: argparse.Namespace) -> int:
        from cecl_pipeline.defs.progress import following_runs
        from cecl_pipeline.defs.runs import home_instance

        with following_runs(home_instance()):
            return command(args)

    return wrapped


def quarter_list(first: str, last: str | None) -> list[str]:
    return q.quarter_range(first, last or first)


@with_progress
def cmd_run(args: argparse.Namespace) -> int:
    """The main job on the embedded default: model and conversion, macro, panels, prompts, the GRPO policy and walk-forward per quarter,
    the report, then the forecast from the last quarter for the quarters after it."""
    from cecl_pipeline.bootstrap.default_data import ensure_default_data
    from cecl_pipeline.defs.runs import materialize, materialize_quarters
    from cecl_pipeline.panel.store import drop_file_quarters

    policy_config = policy_run_config(args.set)  # refused before anything is written
    layout = data_layout()
    if note := ensure_default_data(layout):
        print(note)
    if not drop_file_quarters(layout):
        print(
            f"error: no drop files in {layout.raw_nco_dir}. Import data with `cecl import-history FILE`, "
            "or set CECL_SYNTHETIC=1 to write the synthetic default there.",
            file=sys.stderr,
        )
        return 2
    targets = quarter_list(args.first, args.last)
    prompt_quarters = q.quarter_range(q.shift(targets[0], -DEFAULT_TRAIN_QUARTERS), targets[-1])
    history_only = q.quarter_range(q.shift(prompt_quarters[0], -DEFAULT_LOOKBACK), q.shift(prompt_quarters[0], -1))
    print(f"hf_checkpoint, jax_checkpoint, macro_history, nco_panel {history_only[0]}–{targets[-1]}, "
          f"nco_prompts {prompt_quarters[0]}–{targets[-1]}, grpo_policy and walkforward_forecasts {targets[0]}–{targets[-1]}, walkforward_report; "
          f"then grpo_policy {q.shift(targets[-1], 1)}, forward_forecasts {targets[-1]} and forward_scores")
    summaries = []
    for selection in (["hf_checkpoint", "jax_checkpoint"], ["macro_history"]):
        summaries.append(materialize(selection))
        print(summaries[-1].line())
        if not summaries[-1].success:
            return _report(summaries)
    stages = ((["nco_panel"], history_only, None), (["nco_panel", "nco_prompts"], prompt_quarters, None), (["grpo_policy"], targets, policy_config),
              (["walkforward_forecasts"], targets, None))
    for selection, quarters, run_config in stages:
        if summaries[-1].success:
            summaries += materialize_quarters(selection, quarters, run_config=run_config)
    if summaries[-1].success:
        summaries.append(_report_run())
    if summaries[-1].success:
        summaries += forecast_from(targets[-1], policy_config, DEFAULT_HORIZON, DEFAULT_PATHS)
    if summaries[-1].success:
        if layout.portfolio_csv(targets[-1]).exists():
            summaries += allowance_at(targets[-1], policy_config, DEFAULT_REVERSION_QUARTERS)
        else:
            print(f"no portfolio at {layout.portfolio_csv(targets[-1])}: no allowance booked for {targets[-1]} "
                  f"(the synthetic default writes one for its last quarter only)")
    return _report(summaries)


@with_progress
def cmd_forecast(args: argparse.Namespace) -> int:
    """Forecast the quarters after quarter-end --origin, which need no actuals: grpo_policy[origin+1] (trained on every
    target up to the origin) first if it is not materialized, then forward_forecasts[origin], then forward_scores."""
    from cecl_pipeline.forecast.forward import check_horizon

    try:
        check_horizon(args.horizon)
    except ValueError as error:
        raise UsageError(str(error)) from None
    return _report(forecast_from(q.label(args.origin), policy_run_config(args.set), args.horizon, args.samples, args.scenario or []))


def materialized(asset: str, quarter: str) -> bool:
    """Whether the instance has a materialization of ``asset`` for ``quarter``."""
    import dagster as dg

    from cecl_pipeline.defs.runs import home_instance

    return q.to_partition_key(quarter) in home_instance().get_materialized_partitions(dg.AssetKey(asset))


def forecast_from(origin: str, policy_config: dict | None, horizon: int, samples: int, scenarios: list[str] | None = None) -> list:
    """The runs behind `cecl forecast`, each printed as it ends; the forecast's policy path per segment printed last."""
    from cecl_pipeline.defs.runs import materialize

    serving = q.shift(origin, 1)
    runs = []
    if not materialized("grpo_policy", serving):
        print(f"grpo_policy {serving}, the policy trained on every target up to {origin}, is not materialized yet: training it first")
        runs.append(materialize(["grpo_policy"], serving, run_config=policy_config))
        print(runs[-1].line())
    forward = {"ops": {"forward_forecasts": {"config": {"horizon": horizon, "samples": samples, "scenarios": scenarios or []}}}}
    for selection, quarter, config in ((["forward_forecasts"], origin, forward), (["forward_scores"], None, None)):
        if runs and not runs[-1].success:
            break
        runs.append(materialize(selection, quarter, run_config=config))
        print(runs[-1].line())
    if runs[-1].success:
        _print_forward(origin)
    return runs


@with_progress
def cmd_allowance(args: argparse.Namespace) -> int:
    """Book the CECL allowance at quarter-end --quarter: forward_forecasts[Q] first if it is not materialized (and the policy it
    needs), then cecl_allowance[Q] on raw/portfolio/<Q>.csv, with raw/overlays/<Q>.csv if present; prints where the report is."""
    if args.reversion_quarters < 0:
        raise UsageError(f"--reversion-quarters must be ≥ 0 (0 reverts immediately), got {args.reversion_quarters}")
    return _report(allowance_at(q.label(args.quarter), policy_run_config(args.set), args.reversion_quarters))


def allowance_at(quarter: str, policy_config: dict | None, reversion_quarters: int) -> list:
    """The runs behind `cecl allowance`, each printed as it ends; the allowance by segment printed last."""
    from cecl_pipeline.defs.runs import materialize

    runs = [] if materialized("forward_forecasts", quarter) else forecast_from(quarter, policy_config, DEFAULT_HORIZON, DEFAULT_PATHS)
    if runs and not runs[-1].success:
        return runs
    runs.append(materialize(["cecl_allowance"], quarter, run_config={"ops": {"cecl_allowance": {"config": {"reversion_quarters": reversion_quarters}}}}))
    print(runs[-1].line())
    if runs[-1].success:
        _print_allowance(quarter)
    return runs


def _print_allowance(quarter: str) -> None:
    import pandas as pd

    from cecl_pipeline.settings import results_dir

    by_segment = pd.read_parquet(data_layout().allowance_dir(quarter) / "pools.parquet").groupby("segment")[
        ["amortized_cost", "model_allowance"]].sum()
    report = results_dir() / "allowance" / quarter
    print(f"allowance at {quarter} (model, before overlays):")
    for segment, row in by_segment.iterrows():
        print(f"  {segment}: {row['model_allowance']:,.0f} on {row['amortized_cost']:,.0f} ({row['model_allowance'] / row['amortized_cost']:.2%})")
    print(f"report: {report / 'report.html'} (and report.md: by segment, overlays, roll-forward, fan charts)")


def _print_forward(origin: str) -> None:
    """The policy's forecast from ``origin``, per segment (the mean over its series), and where the files are."""
    import pandas as pd

    from cecl_pipeline.defs.forward_run import policy_path_table
    from cecl_pipeline.settings import results_dir

    path = data_layout().forward_parquet(origin)
    table = policy_path_table(pd.read_parquet(path))
    print(f"forecast from {origin} (grpo_policy, mean over each segment's series: median [10%–90%], % annualized):")
    for (scenario, segment), rows in table.groupby(["scenario", "segment"], sort=True):
        steps = " · ".join(f"{r.quarter} {r.point:.2f} [{r.q10:.2f}–{r.q90:.2f}]" for r in rows.itertuples())
        print(f"  {segment} ({scenario}): {steps}")
    print(f"forecasts: {path} (every path step in paths.parquet); scores once actuals land: {results_dir() / 'forward' / 'scores.csv'}")


def _report_run():
    """Materialize walkforward_report and say where it is."""
    from cecl_pipeline.defs.runs import materialize
    from cecl_pipeline.settings import results_dir

    summary = materialize(["walkforward_report"])
    print(summary.line())
    if summary.success:
        print(f"report: {results_dir() / 'walkforward' / 'report.md'} (and report.html; charts in the web UI under walkforward_report)")
        _print_targets(results_dir() / "walkforward" / "metrics.csv")
    return summary


def _print_targets(metrics_csv: Path) -> None:
    """The policy against the walk-forward's targets, one PASS/MISS line each, from the report's metrics.csv."""
    import pandas as pd

    from cecl_pipeline.forecast.skill import target_lines

    metrics = pd.read_csv(metrics_csv)
    for line in target_lines(metrics[metrics["scope"] == "overall"]):
        print(f"  {line}")


@with_progress
def cmd_eval_nco(args: argparse.Namespace) -> int:
    """walkforward_forecasts for a quarter or a range (grpo_policy[Q] on prompts[Q] beside the baselines), then walkforward_report."""
    from cecl_pipeline.defs.runs import materialize_quarters

    summaries = materialize_quarters(["walkforward_forecasts"], quarter_list(args.first, args.last))
    if summaries[-1].success:
        summaries.append(_report_run())
    return _report(summaries)


def cmd_debug_nco(args: argparse.Namespace) -> int:
    """Show what the policy serving a quarter answers to a few of its prompts, with the reward and group advantage of each answer."""
    from cecl_pipeline.defs.debug import debug_dir
    from cecl_pipeline.defs.runs import materialize

    quarter = q.label(args.first)
    knobs = {"prompts": args.prompts, "samples": args.samples, "seed": args.seed, "temperature": args.temperature}
    knobs.update({name: value for name, value in (("env", args.env), ("max_new_tokens", args.max_new_tokens)) if value})
    summary = materialize(["debug_rollouts"], quarter, run_config={"ops": {"debug_rollouts": {"config": knobs}}})
    print(summary.line())
    if not summary.success:
        return 1
    table = debug_dir(quarter) / "rollouts.md"
    print(table.read_text())
    print(f"written to {table.parent} (rollouts.parquet holds every completion in full) · run {summary.run_id} in the web UI")
    return 0


def cmd_validate_nco(args: argparse.Namespace) -> int:
    """One checkpoint walk-forward over a quarter range; refuses quarters whose targets it was trained on."""
    knobs = {"checkpoint": str(Path(args.checkpoint).resolve()), "start_date": args.start_date, "end_date": args.end_date,
             "samples": args.samples, "max_new_tokens": args.max_new_tokens, "seed": args.seed, "env": args.env or "",
             "out": str(Path(args.out).resolve()) if args.out else ""}
    return _operation("policy_validation", knobs)


def _operation(asset: str, knobs: dict | None = None) -> int:
    """Materialize one of the operations assets (it prints what the terminal should see), then its result line."""
    from cecl_pipeline.defs.runs import materialize

    summary = materialize([asset], run_config={"ops": {asset: {"config": knobs}}} if knobs else None)
    print(summary.line())
    return 0 if summary.success else 1


@with_progress
def cmd_materialize(args: argparse.Namespace) -> int:
    from cecl_pipeline.defs.runs import materialize, materialize_quarters

    selection = [s.strip() for s in args.select.split(",") if s.strip()]
    if args.first is None:
        summary = materialize(selection)
        print(summary.line())
        return _report([summary])
    return _report(materialize_quarters(selection, quarter_list(args.first, args.last)))


@with_progress
def cmd_train(args: argparse.Namespace) -> int:
    """grpo_policy for a quarter or a range, oldest first (each quarter warm-starts from the one before)."""
    from cecl_pipeline.defs.runs import materialize_quarters

    config = policy_run_config([*getattr(args, "preset", []), *(args.set or [])])
    return _report(materialize_quarters(["grpo_policy"], quarter_list(args.first, args.last), run_config=config))


def train_presets() -> dict[str, tuple[str, list[str]]]:
    """The seed's training tasks: `cecl train` with a preset (later --set values win); one per env, from the registry."""
    from cecl_pipeline.envs.registry import ENVS

    presets = {f"train-{env.name.replace('_', '-')}": (f"the {env.name} env: {env.summary}", [f"env={env.name}"]) for env in ENVS.values()}
    return {
        **presets,
        "train-nco-ensemble": ("an ensemble of 3 members (seeds seed…seed+2); --set members=K for another size", ["members=3"]),
        "resume-training": ("re-materialize with the same knobs: each member continues from its newest train checkpoint", []),
    }


@with_progress
def cmd_backfill(args: argparse.Namespace) -> int:
    """A job over a quarter range, one run per quarter, oldest first (each policy warm-starts from the quarter before)."""
    from cecl_pipeline.defs.runs import materialize_quarters

    if args.set and args.job != "quarterly_retrain":
        raise UsageError(f"--set sets grpo_policy knobs, which only quarterly_retrain runs; {args.job} has none")
    config = policy_run_config(args.set)
    return _report(materialize_quarters([], q.quarter_range(args.first, args.last), run_config=config, job=args.job))


def cmd_monitor(args: argparse.Namespace) -> int:
    """Print the running training's steps as they finish (Ctrl-C stops following; training goes on)."""
    return _operation("training_progress", {"follow": not args.once, "steps": args.steps})


def cmd_gpu_status(args: argparse.Namespace) -> int:
    """JAX's devices and their memory; on a machine without a GPU it says so."""
    return _operation("device_status")


def cmd_clean_old_checkpoints(args: argparse.Namespace) -> int:
    """Delete all but the newest --keep quarters of trained policies per base model; a dry run unless --yes."""
    return _operation("checkpoint_cleanup", {"keep": args.keep, "delete": args.yes})


def cmd_convert_model(args: argparse.Namespace) -> int:
    """hf_checkpoint then jax_checkpoint; --hf-dir converts a real Qwen3 directory instead of the default."""
    from cecl_pipeline.defs.runs import materialize

    models = {}
    if args.hf_dir:
        models["hf_dir"] = str(Path(args.hf_dir).resolve())
    if args.dtype:
        models["dtype"] = args.dtype
    summary = materialize(["hf_checkpoint", "jax_checkpoint"], run_config={"resources": {"models": {"config": models}}} if models else None)
    print(summary.line())
    return _report([summary])


def _report(summaries) -> int:
    failed = [s for s in summaries if not s.success]
    print(f"{len(summaries) - len(failed)} run(s) succeeded, {len(failed)} failed · DAGSTER_HOME={os.environ['DAGSTER_HOME']}")
    return 1 if failed else 0


def cmd_import_history(args: argparse.Namespace) -> int:
    from cecl_pipeline.panel.importer import import_history

    series = dict(pair.split("=", 1) for pair in args.series or [])
    layout = data_layout()
    report = import_history(Path(args.file), layout, args.kind, series, args.entity_id, args.replace)
    if report.kind == "macro":
        print(f"macro table: {report.rows} quarters ({report.quarters[0]}–{report.quarters[-1]}) → {layout.macro_csv}")
    else:
        print(f"{report.kind} format: {report.rows} rows → {len(report.written)} drop file(s) in {layout.raw_nco_dir}")
        if report.quarters:
            print(f"quarters {report.quarters[0]}–{report.quarters[-1]}")
        if report.skipped_missing_rate:
            print(f"skipped {report.skipped_missing_rate} row(s) without an nco_rate (blank in the file)")
    return 0


def cmd_import_scenario(args: argparse.Namespace) -> int:
    """Read a Fed supervisory scenario table (Scenario Name, Date like 2026 Q1, the 16 domestic variables), check it and store it by name."""
    from cecl_pipeline.panel.scenarios import read_scenario_file, store_scenario

    scenario = read_scenario_file(Path(args.file))
    path = store_scenario(scenario, data_layout().scenarios_dir)
    print(f"scenario {scenario.name!r} ({scenario.key}): {len(scenario.quarters)} quarters "
          f"({scenario.quarters[0]}–{scenario.quarters[-1]}) → {path}")
    return 0


def cmd_synthesize(args: argparse.Namespace) -> int:
    from cecl_pipeline.bootstrap.default_data import write_synthetic
    from cecl_pipeline.panel.store import drop_file_quarters

    layout = data_layout()
    if drop_file_quarters(layout) and not args.force:
        print(f"{layout.raw_nco_dir} already holds drop files; pass --force to overwrite them with synthetic data", file=sys.stderr)
        return 2
    rows = write_synthetic(layout, args.banks, args.seed, args.first, args.last)
    print(f"wrote {rows} synthetic rows ({args.banks} banks, seed {args.seed}, {args.first}–{args.last}) to {layout.raw_nco_dir} and {layout.macro_csv}")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """Run `dagster dev` until it ends; SIGTERM, SIGINT or SIGHUP to cecl stops it and everything it started.

    dagster dev shuts its webserver, daemon and code server down on SIGTERM or SIGINT (SIGHUP would end it
    alone, so SIGHUP is passed on as SIGTERM). It runs in its own session: a terminal's Ctrl-C reaches it
    once, from here, not a second time in the middle of that shutdown. cecl then waits for the whole group,
    since the code server outlives dagster dev by a few seconds. The exit status is dagster dev's: 0 after
    a clean shutdown, requested or not; 128 + N if signal N ended it.
    """
    import signal
    import time

    from cecl_pipeline.defs.runs import home_instance

    home_instance().dispose()  # its tables exist before dagster dev's processes and any other command open it
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"), "-h", args.host, "-p", str(args.port)]
    received: list[int] = []  # the handlers only record; the loop below forwards, so no signal is lost or sent twice
    previous = {signum: signal.signal(signum, lambda signum, _frame: received.append(signum))
                for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, start_new_session=True)
        forwarded = 0
        while process.poll() is None:
            for signum in received[forwarded:]:
                process.send_signal(signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)
                forwarded += 1
            time.sleep(0.2)
        _wait_for_process_group(process.pid)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 - process.returncode if process.returncode < 0 else process.returncode


def _wait_for_process_group(pgid: int, seconds: float = 30) -> None:
    """Wait until no process is left in group ``pgid``; after ``seconds``, SIGTERM the rest, and 10 s later SIGKILL them."""
    import signal
    import time

    for last_resort, within in ((0, seconds), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        deadline = time.monotonic() + within
        try:
            os.killpg(pgid, last_resort)  # 0 sends nothing: it only asks whether the group still has a process
            while time.monotonic() < deadline:
                try:
                    while os.waitpid(-pgid, os.WNOHANG)[0]:  # those reparented to cecl, when it is their subreaper (PID 1 in a container)
                        pass
                except ChildProcessError:
                    pass
                time.sleep(0.2)
                os.killpg(pgid, 0)
        except ProcessLookupError:
            return


def cmd_paths(args: argparse.Namespace) -> int:
    from cecl_pipeline.settings import checkpoint_dir

    layout = data_layout()
    print(f"CECL_DATA_DIR        {layout.root}\nCECL_CHECKPOINT_DIR  {checkpoint_dir()}\nDAGSTER_HOME         {os.environ['DAGSTER_HOME']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from cecl_pipeline.envs.registry import ENVS
    from cecl_pipeline.grpo.knobs import help_text

    knobs_epilog = f"knobs for --set KNOB=VALUE:\n{help_text()}"
    parser = argparse.ArgumentParser(prog="cecl", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="the main job on the embedded default (synthetic data on first run)", description=cmd_run.__doc__,
                         epilog=knobs_epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--first", default=DEFAULT_TARGET_QUARTERS[0], help="first target quarter, e.g. 2023Q1 (default %(default)s)")
    run.add_argument("--last", default=DEFAULT_TARGET_QUARTERS[1], help="last target quarter (default %(default)s)")
    run.add_argument("--set", action="append", metavar="KNOB=VALUE", help="a grpo_policy config knob, e.g. --set steps=40 (knobs below)")
    run.set_defaults(func=cmd_run)

    mat = sub.add_parser("materialize", help="materialize assets for a quarter or a range, one run per quarter in order")
    mat.add_argument("--select", required=True, help="comma-separated asset names, e.g. nco_panel,nco_prompts")
    mat.add_argument("--first", help="quarter (e.g. 2019Q1); omit for unpartitioned assets such as macro_history")
    mat.add_argument("--last", help="last quarter of a range (default: --first)")
    mat.set_defaults(func=cmd_materialize)

    train = sub.add_parser("train", help="train grpo_policy for a quarter or a range (GRPO, warm-started quarter to quarter)",
                           description=cmd_train.__doc__, epilog=knobs_epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--first", required=True, help="quarter the policy serves, e.g. 2023Q1 (it trains on earlier targets)")
    train.add_argument("--last", help="last quarter of a range (default: --first)")
    train.add_argument("--set", action="append", metavar="KNOB=VALUE", help="a grpo_policy config knob, e.g. --set members=3 --set steps=40")
    train.set_defaults(func=cmd_train)

    fc = sub.add_parser("forecast", help="forecast the quarters after a quarter-end (no actuals needed), then score what has landed",
                        description=cmd_forecast.__doc__, epilog=knobs_epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    fc.add_argument("--origin", required=True, help="the quarter-end to forecast from, e.g. 2024Q4 (its panel must be accepted)")
    fc.add_argument("--horizon", type=int, default=DEFAULT_HORIZON, help="quarters to forecast past the origin, 1–12 (default %(default)s)")
    fc.add_argument("--samples", type=int, default=DEFAULT_PATHS, help="sampled paths per series (default %(default)s)")
    fc.add_argument("--scenario", action="append", metavar="KEY",
                    help="a stored scenario (raw/scenarios/<KEY>.csv) for an env that reads macro data; repeat for several "
                         "(default: every stored one that starts the quarter after the origin)")
    fc.add_argument("--set", action="append", metavar="KNOB=VALUE", help="a grpo_policy knob, used if the policy must be trained first")
    fc.set_defaults(func=cmd_forecast)

    al = sub.add_parser("allowance", help="book the CECL allowance at a quarter-end from its forward forecast and portfolio",
                        description=cmd_allowance.__doc__, epilog=knobs_epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    al.add_argument("--quarter", required=True, help="the quarter-end, e.g. 2024Q4 (reads raw/portfolio/<Q>.csv)")
    al.add_argument("--reversion-quarters", type=int, default=DEFAULT_REVERSION_QUARTERS,
                    help="after the forecast, straight-line reversion to the long-run mean over this many quarters; 0: at once (default %(default)s)")
    al.add_argument("--set", action="append", metavar="KNOB=VALUE", help="a grpo_policy knob, used if the policy must be trained first")
    al.set_defaults(func=cmd_allowance)

    ev = sub.add_parser("eval-nco", help="walk-forward: grpo_policy[Q] vs the baselines on prompts[Q], then the report", description=cmd_eval_nco.__doc__)
    ev.add_argument("--first", required=True, help="first quarter, e.g. 2023Q1")
    ev.add_argument("--last", help="last quarter of a range (default: --first)")
    ev.set_defaults(func=cmd_eval_nco)

    val = sub.add_parser("validate-nco", help="evaluate one checkpoint over a quarter range (never on quarters it was trained on)",
                         description=cmd_validate_nco.__doc__)
    val.add_argument("checkpoint", help="a policy member directory (checkpoints/grpo/…/<Q>/member-0) or a converted checkpoint")
    val.add_argument("--start-date", required=True, help="first quarter, e.g. 2019Q1")
    val.add_argument("--end-date", required=True, help="last quarter, e.g. 2023Q4")
    val.add_argument("--samples", type=int, default=8, help="completions per prompt (default %(default)s)")
    val.add_argument("--max-new-tokens", type=int, default=24, help="completion length limit (default %(default)s)")
    val.add_argument("--env", choices=tuple(ENVS), help="prompt environment (default: the one the checkpoint was trained on, else nco)")
    val.add_argument("--seed", type=int, default=0, help="sampling seed (default %(default)s)")
    val.add_argument("--out", help="output directory (default results/validate-nco/<checkpoint>-<start>-<end>)")
    val.set_defaults(func=cmd_validate_nco)

    debug = sub.add_parser("debug-nco", help="a few prompts of a quarter answered by its policy, with rewards and advantages",
                           description=cmd_debug_nco.__doc__)
    debug.add_argument("--first", required=True, help="the quarter, e.g. 2023Q1 (grpo_policy[Q]; the base model before Q is trained)")
    debug.add_argument("--prompts", type=int, default=4, help="the first N prompts of the quarter (default %(default)s)")
    debug.add_argument("--samples", type=int, default=8, help="completions per prompt, one GRPO group (default %(default)s)")
    debug.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default %(default)s)")
    debug.add_argument("--max-new-tokens", type=int, default=0, help="answer length limit (default: what the policy was trained with)")
    debug.add_argument("--env", choices=tuple(ENVS), help="prompt environment (default: the policy's own)")
    debug.add_argument("--seed", type=int, default=0, help="sampling seed (default %(default)s)")
    debug.set_defaults(func=cmd_debug_nco)

    for name, (summary, preset) in train_presets().items():
        task = sub.add_parser(name, help=f"train grpo_policy: {summary}", description=cmd_train.__doc__, epilog=knobs_epilog,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
        task.add_argument("--first", required=True, help="quarter the policy serves, e.g. 2023Q1")
        task.add_argument("--last", help="last quarter of a range (default: --first)")
        task.add_argument("--set", action="append", metavar="KNOB=VALUE", help="a grpo_policy config knob (see `cecl train`)")
        task.set_defaults(func=cmd_train, preset=preset)

    back = sub.add_parser("backfill", help="run a job over a quarter range in quarter order (default quarterly_retrain)",
                          description=cmd_backfill.__doc__, epilog=knobs_epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    back.add_argument("first", help="first quarter, e.g. 2019Q1")
    back.add_argument("last", help="last quarter, e.g. 2023Q4")
    back.add_argument("--job", default="quarterly_retrain", choices=("quarterly_retrain", "ingest_quarter", "walkforward"),
                      help="the job to run each quarter (default %(default)s)")
    back.add_argument("--set", action="append", metavar="KNOB=VALUE", help="a grpo_policy knob, for quarterly_retrain")
    back.set_defaults(func=cmd_backfill)

    mon = sub.add_parser("monitor", help="follow the running training's metrics", description=cmd_monitor.__doc__)
    mon.add_argument("--once", action="store_true", help="print the steps logged so far and exit")
    mon.add_argument("--steps", type=int, default=0, help="the run's step count, for 'step k/N' (default: unknown)")
    mon.set_defaults(func=cmd_monitor)

    gpu = sub.add_parser("gpu-status", help="JAX devices and their memory (works without a GPU)", description=cmd_gpu_status.__doc__)
    gpu.set_defaults(func=cmd_gpu_status)

    clean = sub.add_parser("clean-old-checkpoints", help="keep the newest N quarters of trained policies; dry run unless --yes",
                           description=cmd_clean_old_checkpoints.__doc__)
    clean.add_argument("--keep", type=int, default=4, help="quarters to keep per base model (default %(default)s)")
    clean.add_argument("--yes", action="store_true", help="really delete (without it, only list what would go)")
    clean.set_defaults(func=cmd_clean_old_checkpoints)

    conv = sub.add_parser("convert-model", help="materialize hf_checkpoint and jax_checkpoint (HF → JAX)", description=cmd_convert_model.__doc__)
    conv.add_argument("--hf-dir", help="an HF Qwen3 directory (default: the embedded random tiny model)")
    conv.add_argument("--dtype", choices=("float32", "bfloat16"), help="parameter dtype of the conversion (default float32)")
    conv.set_defaults(func=cmd_convert_model)

    imp = sub.add_parser("import-history", help="split a history file into quarterly drop files (or store the macro table)")
    imp.add_argument("file", help="long-format CSV/Parquet, a FRED CSV download, or the macro history CSV")
    imp.add_argument("--kind", choices=("auto", "long", "fred", "macro"), default="auto", help="file format (default: detect)")
    imp.add_argument("--series", action="append", metavar="ID=SEGMENT", help="FRED series id → segment name (repeatable)")
    imp.add_argument("--entity-id", default="US_COMMERCIAL_BANKS", help="entity_id for FRED series (default %(default)s)")
    imp.add_argument("--replace", action="store_true", help="overwrite values that differ from existing drop files")
    imp.set_defaults(func=cmd_import_history)

    scen = sub.add_parser("import-scenario", help="check a Fed supervisory scenario table and store it by name",
                          description=cmd_import_scenario.__doc__)
    scen.add_argument("file", help="CSV as the Fed publishes it, e.g. ../shared/data/scenarios/fed_2026_proposed_baseline_domestic.csv")
    scen.set_defaults(func=cmd_import_scenario)

    syn = sub.add_parser("synthesize", help="write the seeded synthetic panel and macro table as drop files")
    syn.add_argument("--banks", type=int, default=40, help="number of banks (default %(default)s)")
    syn.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    syn.add_argument("--first", default="2000Q1", help="first quarter (default %(default)s)")
    syn.add_argument("--last", default="2024Q4", help="last quarter (default %(default)s)")
    syn.add_argument("--force", action="store_true", help="overwrite existing drop files")
    syn.set_defaults(func=cmd_synthesize)

    ui = sub.add_parser("ui", help="start the Dagster web UI and daemon (dagster dev) on this project")
    ui.add_argument("--host", default="127.0.0.1", help="bind address (default %(default)s: this machine only)")
    ui.add_argument("--port", type=int, default=3000, help="port (default %(default)s)")
    ui.set_defaults(func=cmd_ui)

    paths = sub.add_parser("paths", help="show where data, checkpoints and the Dagster instance live")
    paths.set_defaults(func=cmd_paths)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # We use transformers for tokenizers only; its advice that PyTorch is missing is noise in every run.
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    prepare_dagster_home()
    from cecl_pipeline.defs.partitions import NoPartitionError
    from cecl_pipeline.panel.errors import DropFileError
    from cecl_pipeline.quarters import QuarterError

    try:
        return args.func(args)
    except (DropFileError, NoPartitionError, QuarterError, UsageError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
