import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cecl_pipeline.cli import build_parser, main
from cecl_pipeline.envs.registry import ENVS
from cecl_pipeline.quarters import quarter_range
from cecl_pipeline_tests.cecl_command import CECL, cecl
from cecl_pipeline_tests.conftest import SHARED_DATA
from cecl_pipeline_tests.fake_training import fake_policy_store


def subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def test_console_script_help_lists_every_command():
    done = subprocess.run([CECL, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for name in subcommands():
        assert name in done.stdout


@pytest.mark.parametrize("command", subcommands())
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert f"usage: cecl {command}" in capsys.readouterr().out


def test_import_history_real_files_then_bad_file_exits_2_without_traceback(layout, tmp_path, capsys, monkeypatch):
    assert main(["import-history", str(SHARED_DATA / "fred_chargeoff_rates.csv")]) == 0
    assert main(["import-history", str(SHARED_DATA / "frb_macro_history.csv")]) == 0
    out = capsys.readouterr().out
    assert "568 rows → 154 drop file(s)" in out and "200 quarters (1976Q1–2025Q4)" in out
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"entity_id": ["X"], "segment": ["cards"], "quarter": ["2019Q1"], "nco_rate": ["lots"]}).to_csv(bad, index=False)
    assert main(["import-history", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and "row 2" in err and "'nco_rate'" in err and "Traceback" not in err


def test_import_scenario_stores_a_real_table_by_name_and_refuses_a_gap_naming_its_row(layout, tmp_path, capsys):
    real = SHARED_DATA / "scenarios" / "fed_2026_proposed_severely_adverse_domestic.csv"
    assert main(["import-scenario", str(real)]) == 0
    stored = layout.scenarios_dir / "supervisory_severely_adverse.csv"
    assert "13 quarters (2026Q1–2029Q1)" in capsys.readouterr().out and stored.is_file()
    before = stored.read_bytes()
    lines = real.read_text().splitlines()
    gap = tmp_path / "gap.csv"
    gap.write_text("\n".join([*lines[:3], *lines[4:]]) + "\n")  # 2026Q3 left out
    assert main(["import-scenario", str(gap)]) == 2
    err = capsys.readouterr().err
    assert "gap.csv" in err and "row 4, column 'Date'" in err and "expected 2026Q3" in err and "Traceback" not in err
    assert stored.read_bytes() == before and sorted(p.name for p in layout.scenarios_dir.iterdir()) == [stored.name]


def test_main_command_on_the_embedded_default(layout, tmp_path, monkeypatch):
    """`cecl run`: default model and synthetic data, conversion, 12 + 9 panel quarters, 9 prompt quarters, the policy."""
    monkeypatch.setenv("CECL_SYNTHETIC", "1")
    small = ["steps=1", "sft_steps=2", "group_size=4", "ppo_minibatch=8", "num_generation_tokens=4", "wandb=false"]
    done = cecl("run", "--first", "2019Q1", "--last", "2019Q1", *[a for knob in small for a in ("--set", knob)], timeout=1800)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "wrote the synthetic default" in out and "29 run(s) succeeded, 0 failed" in out and "✓ grpo_policy 2019Q1" in out
    assert "✓ walkforward_forecasts 2019Q1" in out and "✓ walkforward_report" in out
    # It ends with the forecast from its last quarter: the policy trained on every target up to 2019Q1, then 2019Q2–2020Q1.
    assert "✓ grpo_policy 2019Q2" in out and "✓ forward_forecasts 2019Q1" in out and "✓ forward_scores" in out
    assert "forecast from 2019Q1" in out and "credit_card (unconditional): 2019Q2 " in out and " · 2020Q1 " in out
    assert f"no portfolio at {layout.portfolio_csv('2019Q1')}: no allowance booked for 2019Q1" in out  # the default has one for 2024Q4
    forward = pd.read_parquet(layout.forward_parquet("2019Q1"))
    assert sorted(forward["quarter"].unique()) == quarter_range("2019Q2", "2020Q1") and len(forward[forward["model"] == "grpo_policy"]) == 4 * 160
    report = Path(os.environ["CECL_RESULTS_DIR"]) / "walkforward" / "report.md"
    assert f"report: {report}" in out and "grpo_policy MAE" in report.read_text()
    assert "policy MAE ≤ best challenger MAE" in out and "policy calibrated 10–90 coverage" in out and "policy directional accuracy" in out
    prompts = pd.read_parquet(layout.prompts_parquet("2019Q1"))
    assert len(prompts) == len(ENVS) * 40 * 4
    policy = json.loads(next(Path(os.environ["CECL_CHECKPOINT_DIR"]).glob("grpo/*/2019Q1/policy.json")).read_text())
    assert [Path(p).stem for p in policy["prompt_files"]] == quarter_range("2017Q1", "2018Q4")
    assert (Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml").is_symlink()

    member = policy["members"][0]["path"]
    refused = cecl("validate-nco", member, "--start-date", "2018Q3", "--end-date", "2019Q1")
    assert refused.returncode == 1, refused.stderr
    out = refused.stdout
    assert "✗ policy_validation" in out and "trained on targets up to 2018Q4" in out and "2018Q3, 2018Q4 (evaluate from 2019Q1 on)" in out
    out_dir = tmp_path / "validation"
    done = cecl("validate-nco", member, "--start-date", "2019Q1", "--end-date", "2019Q1", "--samples", "2", "--out", str(out_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "grpo_policy MAE" in out and "✓ policy_validation" in out and (out_dir / "report" / "report.html").is_file()
    assert len(pd.read_parquet(out_dir / "2019Q1" / "completions.parquet")) == 40 * 4 * 2


def test_synthetic_data_is_not_written_into_a_users_folder_unasked(layout, tmp_path, capsys, monkeypatch):
    assert main(["run", "--first", "2019Q1", "--last", "2019Q1"]) == 2
    assert not layout.raw_nco_dir.exists()
    assert f"no drop files in {layout.raw_nco_dir}" in capsys.readouterr().err


def test_convert_model_converts_a_configured_directory(tmp_path):
    """`cecl convert-model --hf-dir` on a checkpoint our exporter wrote, in bf16."""
    from cecl_pipeline.llm.checkpoint import load_jax_checkpoint
    from cecl_pipeline.llm.config import NAMED_CONFIGS
    from cecl_pipeline.llm.hf_export import write_random_hf_checkpoint

    source = tmp_path / "My-Qwen3"
    write_random_hf_checkpoint(NAMED_CONFIGS["tiny"].replace(num_hidden_layers=1), source, seed=1)
    done = cecl("convert-model", "--hf-dir", str(source), "--dtype", "bfloat16")
    assert done.returncode == 0 and "✓ hf_checkpoint+jax_checkpoint" in done.stdout, done.stdout + done.stderr
    config, params = load_jax_checkpoint(Path(os.environ["CECL_CHECKPOINT_DIR"]) / "jax" / "My-Qwen3-bfloat16")
    assert config.num_hidden_layers == 1 and params["embed_tokens"]["embedding"].dtype.name == "bfloat16"


def test_train_refuses_an_unknown_knob_before_any_run(capsys):
    assert main(["train", "--first", "2023Q1", "--set", "stepz=3"]) == 2
    err = capsys.readouterr().err
    assert "'stepz'" in err and "steps" in err


@pytest.mark.parametrize(("item", "said"), [
    ("learning_rate=abc", "learning_rate: expected a number > 0, got 'abc'"),
    ("env=nco_double", "env: expected one of nco, nco_single, nco_enhanced, nco_combined, nco_adjust, got 'nco_double'"),
    ("group_size=0", "group_size: expected an integer ≥ 2, got 0"),
    ("wandb=maybe", "wandb: expected true or false, got 'maybe'"),
    ("train_quarters=13", "train_quarters: expected an integer ≥ 1 and ≤ 12, got 13"),
])
def test_a_bad_knob_value_names_the_knob_and_what_it_accepts(capsys, item, said):
    assert main(["train", "--first", "2023Q1", "--set", item]) == 2
    assert capsys.readouterr().err.strip() == f"error: {said}"


@pytest.mark.parametrize("horizon", ["0", "13"])
def test_forecast_refuses_a_horizon_outside_one_to_twelve_before_any_run(capsys, horizon):
    assert main(["forecast", "--origin", "2023Q4", "--horizon", horizon]) == 2
    assert capsys.readouterr().err.strip() == f"error: horizon must be 1–12 quarters, got {horizon}"


def test_allowance_refuses_a_negative_reversion_before_any_run(capsys):
    assert main(["allowance", "--quarter", "2023Q4", "--reversion-quarters", "-1"]) == 2
    assert capsys.readouterr().err.strip() == "error: --reversion-quarters must be ≥ 0 (0 reverts immediately), got -1"


def test_a_quarter_without_a_partition_gets_one_line(capsys):
    assert main(["train", "--first", "2030Q1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 2030Q1 has no partition yet") and len(err.strip().splitlines()) == 1


def test_knob_assignments_are_typed():
    from cecl_pipeline.grpo.knobs import KnobError, parse_assignments

    assert parse_assignments(["steps=40", "wandb=false", "learning_rate=1e-4", "env=nco_single"]) == {
        "steps": 40, "wandb": False, "learning_rate": 1e-4, "env": "nco_single"}
    with pytest.raises(KnobError, match="KNOB=VALUE"):
        parse_assignments(["members"])


def test_training_presets_compose_with_set_and_later_values_win():
    from cecl_pipeline.cli import policy_run_config

    args = build_parser().parse_args(["train-nco-ensemble", "--first", "2019Q1", "--set", "members=5", "--set", "env=nco_single"])
    assert policy_run_config([*args.preset, *args.set])["ops"]["grpo_policy"]["config"] == {"members": 5, "env": "nco_single"}
    enhanced = build_parser().parse_args(["train-nco-enhanced", "--first", "2019Q1"])
    assert policy_run_config([*enhanced.preset, *(enhanced.set or [])])["ops"]["grpo_policy"]["config"] == {"env": "nco_enhanced"}


def test_monitor_prints_the_running_members_steps():
    root = Path(os.environ["CECL_CHECKPOINT_DIR"])
    idle = cecl("monitor", "--once")
    assert idle.returncode == 0 and "no training in progress" in idle.stdout and "✓ training_progress" in idle.stdout
    fake_policy_store(root, ["2019Q1"], training="2019Q2")
    done = cecl("monitor", "--once", "--steps", "16")
    assert done.returncode == 0, done.stderr
    assert "following grpo_policy 2019Q2 member 0" in done.stdout
    assert "member 0: GRPO step 1/16 · reward +0.500" in done.stdout and "GRPO step 2/16" in done.stdout


def test_clean_old_checkpoints_is_a_dry_run_unless_confirmed_and_never_touches_a_training():
    store = fake_policy_store(Path(os.environ["CECL_CHECKPOINT_DIR"]), ["2019Q1", "2019Q2", "2019Q3", "2019Q4"], training="2020Q1")
    dry = cecl("clean-old-checkpoints", "--keep", "2")
    assert dry.returncode == 0, dry.stderr
    assert "would delete" in dry.stdout and "2019Q1" in dry.stdout and "2019Q2" in dry.stdout and "2019Q3" not in dry.stdout
    assert "2 quarter(s) to delete" in dry.stdout and (store / "2019Q1").is_dir()
    assert cecl("clean-old-checkpoints", "--keep", "2", "--yes").returncode == 0
    assert sorted(p.name for p in store.iterdir()) == ["2019Q3", "2019Q4", "2020Q1"]
    refused = cecl("clean-old-checkpoints", "--keep", "0")
    assert refused.returncode == 1 and "keep must be at least 1" in refused.stdout
    assert sorted(p.name for p in store.iterdir()) == ["2019Q3", "2019Q4", "2020Q1"]


def test_gpu_status_works_without_a_gpu():
    done = cecl("gpu-status")
    assert done.returncode == 0, done.stderr
    assert "backend cpu" in done.stdout and "no GPU visible to JAX" in done.stdout and "✓ device_status" in done.stdout


def test_backfill_runs_a_job_quarter_by_quarter_in_order(synthetic_layout, capsys):
    import dagster as dg

    assert main(["materialize", "--select", "macro_history"]) == 0
    assert main(["backfill", "2016Q3", "2016Q4", "--job", "ingest_quarter"]) == 0
    out = capsys.readouterr().out
    assert "[1/2] ✓ ingest_quarter 2016Q3" in out and "[2/2] ✓ ingest_quarter 2016Q4" in out
    assert synthetic_layout.panel_parquet("2016Q4").is_file() and synthetic_layout.prompts_parquet("2016Q4").is_file()
    assert main(["backfill", "2016Q3", "2016Q4", "--job", "ingest_quarter", "--set", "steps=2"]) == 2
    assert "only quarterly_retrain runs" in capsys.readouterr().err
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(dg.RunsFilter(job_name="ingest_quarter"))
        assert [r.tags["dagster/partition"] for r in reversed(runs)] == ["2016-07-01", "2016-10-01"]


def test_justfile_recipes_call_commands_cecl_accepts():
    just = str(Path(sys.executable).with_name("just"))
    calls = {"train-nco": ["2019Q1"], "train-nco-adjust": ["2019Q1"], "train-nco-combined": ["2019Q1", "2019Q2"],
             "train-nco-ensemble": ["2019Q1", "2019Q2", "--set", "members=5"], "resume-training": ["2019Q1"],
             "eval-nco": ["2019Q1", "2019Q4"], "validate-nco": ["ckpt", "2019Q1", "2023Q4"], "monitor": [], "gpu-status": [],
             "clean-old-checkpoints": ["2", "--yes"], "train": ["2019Q1"], "ingest": ["2019Q1", "2019Q2"]}
    for recipe, args in calls.items():
        done = subprocess.run([just, "--dry-run", recipe, *args], capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[1])
        assert done.returncode == 0, done.stderr
        command = done.stderr.strip().splitlines()[-1].split()
        assert command[0] == ".venv/bin/cecl", command
        build_parser().parse_args(command[1:])  # exits (failing the test) on a command or flag cecl does not have


@pytest.mark.slow
def test_ui_stopped_with_sigterm_stops_dagster_dev_and_all_it_started(tmp_path):
    """`cecl ui` stopped as systemd or `docker stop` do, SIGTERM to cecl alone: dagster dev, its webserver, daemon and
    code server all end before cecl does, and the port is free again."""
    import signal
    import socket

    import psutil

    from cecl_pipeline_tests.defs.test_webserver import free_port, wait_until_up

    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home")}
    with open(tmp_path / "ui.log", "w") as log:
        process = subprocess.Popen([CECL, "ui", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    descendants: list[psutil.Process] = []
    try:
        wait_until_up(port, process, seconds=180)
        descendants = psutil.Process(process.pid).children(recursive=True)
        commands = " ".join(" ".join(p.cmdline()) for p in descendants)
        assert all(name in commands for name in ("dagster dev", "dagster_webserver", "dagster._daemon", "code-server")), commands
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=90) == 0, (tmp_path / "ui.log").read_text()[-3000:]  # 0: dagster dev shut down cleanly
        left = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not left, [" ".join(p.cmdline()) for p in left]
        with socket.socket() as s:  # as a new webserver would: SO_REUSEADDR, so only a listener left behind can refuse it
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen()
    finally:
        if process.poll() is None:
            descendants += psutil.Process(process.pid).children(recursive=True)
            process.kill()
            process.wait()
        for leftover in descendants:
            try:
                leftover.kill()
            except psutil.NoSuchProcess:
                pass
