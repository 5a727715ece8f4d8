"""dagster.yaml and dagster-postgres.yaml: one set of settings, two storages, chosen by DAGSTER_PG_URL."""

import os
import subprocess
from pathlib import Path

import dagster as dg
import yaml

from cecl_pipeline.cli import prepare_dagster_home
from cecl_pipeline.settings import PROJECT_ROOT, instance_yaml
from cecl_pipeline_tests.cecl_command import CECL


def settings(name: str) -> dict:
    return yaml.safe_load((PROJECT_ROOT / name).read_text())


def test_the_postgres_settings_differ_only_in_storage():
    sqlite, postgres = settings("dagster.yaml"), settings("dagster-postgres.yaml")
    assert "storage" not in sqlite
    assert postgres.pop("storage") == {"postgres": {"postgres_url": {"env": "DAGSTER_PG_URL"}}}
    assert postgres == sqlite


def test_retries_pools_and_telemetry_load_into_a_real_instance(tmp_path):
    (tmp_path / "dagster.yaml").symlink_to(PROJECT_ROOT / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert not instance.run_retries_retry_on_asset_or_op_failure
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"


def test_dagster_pg_url_selects_postgres_and_re_points_our_link(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("DAGSTER_PG_URL", raising=False)
    prepare_dagster_home()
    assert os.readlink(home / "dagster.yaml") == str(PROJECT_ROOT / "dagster.yaml")

    monkeypatch.setenv("DAGSTER_PG_URL", "postgresql://cecl@127.0.0.1:5432/cecl")
    assert instance_yaml() == PROJECT_ROOT / "dagster-postgres.yaml"
    prepare_dagster_home()
    assert os.readlink(home / "dagster.yaml") == str(PROJECT_ROOT / "dagster-postgres.yaml")


def test_a_dagster_yaml_of_the_users_own_is_left_alone(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    own = "telemetry:\n  enabled: false\n"
    (home / "dagster.yaml").write_text(own)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_URL", "postgresql://cecl@127.0.0.1:5432/cecl")
    prepare_dagster_home()
    assert Path(home / "dagster.yaml").read_text() == own


def test_commands_started_together_on_a_new_instance_all_succeed_and_leave_it_usable():
    """Each would create the new instance's tables; unserialised, some crashed and the instance never opened again."""
    commands = [subprocess.Popen([CECL, "gpu-status"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(4)]
    outputs = [command.communicate(timeout=300)[0] for command in commands]
    assert [command.returncode for command in commands] == [0] * 4, "\n".join(outputs)
    with dg.DagsterInstance.get() as instance:
        assert len(instance.get_runs()) == 4
