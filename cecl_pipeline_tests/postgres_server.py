"""A real PostgreSQL server for tests: Debian's binaries, a throwaway cluster on a free loopback port.

scripts/system-deps.sh installs the server. PostgreSQL refuses to run as root, so as root the
cluster belongs to the `postgres` user the Debian package creates.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cecl_pipeline_tests.defs.test_webserver import free_port

USER = "cecl"
PASSWORD = "cecl-test-secret"  # a throwaway cluster's; tests also check that it never reaches the UI


@dataclass(frozen=True)
class PostgresServer:
    port: int

    def url(self, database: str) -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new, empty database; returns its URL."""
        import psycopg2

        connection = psycopg2.connect(self.url("postgres"))
        connection.autocommit = True  # CREATE DATABASE refuses to run inside a transaction
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.url(name)


def server_binaries() -> Path:
    """The newest installed PostgreSQL's bin folder (Debian keeps them out of PATH)."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if not versions:
        raise RuntimeError("no PostgreSQL server under /usr/lib/postgresql: run scripts/system-deps.sh (Debian's postgresql)")
    return versions[-1].parent


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """initdb + pg_ctl start on 127.0.0.1 (password auth), stopped and deleted afterwards."""
    bin_dir = server_binaries()
    root = Path(tempfile.mkdtemp(prefix="cecl-pg-"))
    as_owner = _as_postgres_user(root)
    (root / "password").write_text(PASSWORD)
    port = free_port()
    data = root / "data"
    subprocess.run([*as_owner, str(bin_dir / "initdb"), "-D", str(data), "-U", USER, "--auth=scram-sha-256", f"--pwfile={root / 'password'}",
                    "--no-sync"], check=True, capture_output=True)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*as_owner, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "server.log"), "-w", "start"],
                   check=True, capture_output=True)
    try:
        yield PostgresServer(port)
    finally:
        subprocess.run([*as_owner, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _as_postgres_user(root: Path) -> list[str]:
    """The command prefix that runs the server's tools as a non-root owner of ``root``."""
    if os.geteuid() != 0:
        return []
    shutil.chown(root, "postgres", "postgres")
    return ["runuser", "-u", "postgres", "--"]
