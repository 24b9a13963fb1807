"""A real PostgreSQL server for the tests in this directory: throwaway data dir, loopback, any port.

The server binaries are FEEDFORWARD_PG_BINDIR's, else the system's PostgreSQL 15, else the ones the
`pgserver` wheel bundles (a test dependency), so `make test` needs nothing beyond Python. The server
runs as the `postgres` user (or `nobody` where there is none) when the tests run as root: PostgreSQL
refuses to run as root. Each test gets its own empty database, so tests never see each other's
rows. Without any binaries the fixture fails, saying what to install: these tests prove a promise
(issue 5), so they must not vanish silently.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def _bundled_bin_dir() -> str:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return ""
    return str(Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin")


BIN_DIRS = (os.environ.get("FEEDFORWARD_PG_BINDIR", ""), "/usr/lib/postgresql/15/bin",
            _bundled_bin_dir())


def _server_user() -> str:
    try:
        return pwd.getpwnam("postgres").pw_name
    except KeyError:
        return "nobody"


SERVER_USER = _server_user()


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str

    def url(self, database: str, driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{self.user}@{self.host}:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
        import psycopg

        with psycopg.connect(self.url("postgres", "postgresql"), autocommit=True) as connection:
            connection.execute(sql)  # type: ignore[arg-type]


def _bin_dir() -> Path:
    for candidate in filter(None, BIN_DIRS):
        if (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    pytest.fail(
        "PostgreSQL server binaries not found (looked in "
        + ", ".join(filter(None, BIN_DIRS))
        + "); install the test extra (it brings `pgserver`), Debian's `postgresql` package, or "
        "set FEEDFORWARD_PG_BINDIR",
        pytrace=False,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", SERVER_USER, "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str]) -> None:
    result = subprocess.run(_as_server_user(command), capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        pytest.fail(f"{command[0]} failed:\n{result.stdout}\n{result.stderr}", pytrace=False)


def _start(bin_dir: Path, root: Path, port: int) -> Path:
    data = root / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, SERVER_USER)
        shutil.chown(data, SERVER_USER)
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
    _run([*initdb, "--encoding=UTF8", "--no-sync"])
    # fsync off: the data dir is thrown away; durability is SQLite's and PostgreSQL's own business.
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
    pg_ctl = [str(bin_dir / "pg_ctl"), "start", "-D", str(data), "-w", "-t", "60"]
    _run([*pg_ctl, "-l", str(root / "server.log"), "-o", f"{options} -c max_connections=200"])
    return data


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = _bin_dir()
    # Not under pytest's tmp dir: that one is private to root and the server user must reach it.
    root = Path(tempfile.mkdtemp(prefix="feedforward-pg-"))
    try:
        port = _free_port()
        data = _start(bin_dir, root, port)
        try:
            yield PostgresServer(host="127.0.0.1", port=port, user="postgres")
        finally:
            _run([str(bin_dir / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w"])
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database on the shared server; dropped after the test."""
    name = f"ff_{uuid.uuid4().hex[:12]}"
    postgres_server.admin(f'CREATE DATABASE "{name}"')
    yield postgres_server.url(name)
    postgres_server.admin(f'DROP DATABASE "{name}" WITH (FORCE)')
