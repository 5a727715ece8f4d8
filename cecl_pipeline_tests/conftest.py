"""Shared fixtures: real reference data from ../shared, isolated data folders and Dagster instances."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import absl.logging
import dagster as dg
import pytest

from cecl_pipeline.bootstrap.default_data import write_synthetic
from cecl_pipeline.settings import DataLayout

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_DATA = SHARED / "data"
QWEN3_TOKENIZER = SHARED / "qwen3" / "tokenizer"

# Every run launch makes Dagster call logging.config.dictConfig, which closes every live handler.
# absl's handler (made when JAX imports absl, attached to no logger here) then closes its stream
# unless that stream is the current sys.stderr. It was made under pytest's capture, so its stream
# is pytest's capture file; under capsys that file is not sys.stderr, gets closed, and the test
# fails at teardown with "I/O operation on closed file" (seen with -n 2, depending on test order).
absl.logging.get_absl_handler().python_handler.stream = sys.__stderr__


@pytest.fixture(autouse=True)
def isolated_outputs(tmp_path, monkeypatch):
    """No test writes into the project's data/, checkpoints/ or .dagster_home/."""
    monkeypatch.setenv("CECL_DATA_DIR", str(tmp_path / "isolated-data"))
    monkeypatch.setenv("CECL_CHECKPOINT_DIR", str(tmp_path / "isolated-checkpoints"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "isolated-dagster-home"))
    monkeypatch.setenv("CECL_RESULTS_DIR", str(tmp_path / "isolated-results"))


@pytest.fixture
def layout(tmp_path, monkeypatch) -> DataLayout:
    """An empty data folder, with CECL_DATA_DIR pointing at it."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("CECL_DATA_DIR", str(root))
    monkeypatch.delenv("CECL_SYNTHETIC", raising=False)
    return DataLayout(root)


@pytest.fixture
def synthetic_layout(layout) -> DataLayout:
    """A data folder holding a small synthetic panel (8 banks, 2016Q1–2019Q4) as drop files."""
    write_synthetic(layout, n_banks=8, seed=3, first="2016Q1", last="2019Q4")
    return layout


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for this test process (one per xdist worker that asks for it)."""
    from cecl_pipeline_tests.postgres_server import postgres_server

    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request, monkeypatch) -> str:
    """Run the test once on each instance storage: SQLite, then a fresh database on the PostgreSQL server."""
    monkeypatch.delenv("DAGSTER_PG_URL", raising=False)
    if request.param == "postgres":
        database = request.getfixturevalue("postgres").create_database(f"cecl_{uuid.uuid4().hex[:12]}")
        monkeypatch.setenv("DAGSTER_PG_URL", database)
    return request.param


@pytest.fixture
def instance(tmp_path, monkeypatch):
    """A real, persistent (SQLite) Dagster instance in a temporary DAGSTER_HOME."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.instance_for_test(temp_dir=str(home)) as inst:
        yield inst


def pytest_configure(config):
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
