"""A real server for live tests: `python -m uvicorn service.app:app` on 127.0.0.1 in a subprocess.

A LiveServer runs over a data directory (SQLite file, real worker processes), waits for /healthz
when started, can be SIGKILLed and started again on the same data directory, and finds its worker
processes through /proc (children of the server process running multiprocessing's spawn).
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.polling import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0

# Short heartbeat and lease, so that a lost job is noticed within seconds (production: 5 s / 30 s).
FAST_LIFECYCLE = {"heartbeat_seconds": 0.5, "lease_seconds": 2.0, "poll_seconds": 0.1}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        if parent == pid:
            children.append(int(entry.name))
    return children


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class LiveServer:
    """One uvicorn process on 127.0.0.1 over a data directory; restartable after a kill."""

    def __init__(self, data_dir: Path, settings: dict[str, Any]) -> None:
        self.data_dir = data_dir
        self.settings = settings
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log_path = data_dir.parent / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_path(self) -> Path:
        return self.data_dir / "feedforward.db"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDFORWARD_")}
        env["FEEDFORWARD_DATA_DIR"] = str(self.data_dir)
        env["FEEDFORWARD_LOG_LEVEL"] = "WARNING"
        env |= {f"FEEDFORWARD_{key.upper()}": str(value) for key, value in self.settings.items()}
        return env

    def start(self) -> LiveServer:
        self.port = free_port()
        command = [sys.executable, "-m", "uvicorn", "service.app:app", "--host", "127.0.0.1",
                   "--port", str(self.port), "--timeout-graceful-shutdown", "5"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=self._env(), stdout=log,
                                            stderr=subprocess.STDOUT)
        wait_until(self._healthy, timeout=START_TIMEOUT_SECONDS, message="/healthz answers")
        return self

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log()}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0, **kwargs)

    def worker_pids(self) -> list[int]:
        """The server's worker processes (spawned children, not the resource tracker)."""
        assert self.process is not None
        return [pid for pid in _children(self.process.pid)
                if "spawn_main" in _cmdline(pid) and "resource_tracker" not in _cmdline(pid)]

    def kill(self) -> None:
        """SIGKILL the server, as a crash would; its workers die with it (PR_SET_PDEATHSIG)."""
        assert self.process is not None
        workers = self.worker_pids()
        self.process.kill()
        self.process.wait(STOP_TIMEOUT_SECONDS)
        wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers),
                   timeout=STOP_TIMEOUT_SECONDS, message="workers die with the server")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_SECONDS)

    def integrity_check(self) -> str:
        with sqlite3.connect(self.database_path) as connection:
            return str(connection.execute("PRAGMA integrity_check").fetchone()[0])
