"""uvicorn servers in subprocesses on loopback, for the service benchmark.

Each server is our own child process: we stop it by its pid (SIGTERM, then SIGKILL after a grace
period) and never by name. Output goes to a log file, not a pipe, so a chatty server cannot block.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench._harness import ROOT

HOST = "127.0.0.1"
READY_TIMEOUT_SECONDS = 120.0
STOP_GRACE_SECONDS = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class Server:
    """`python -m uvicorn APP` on 127.0.0.1:<free port> with extra environment variables."""

    def __init__(self, app: str, env: dict[str, str], log_path: Path, ready_path: str) -> None:
        self.app, self.env, self.log_path, self.ready_path = app, env, log_path, ready_path
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        command = [sys.executable, "-m", "uvicorn", self.app, "--host", HOST,
                   "--port", str(self.port)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed interpreter and arguments
                command, cwd=ROOT, env={**os.environ, **self.env}, stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.app} exited early; see {self.log_path}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)  # polling a subprocess's readiness, not synchronising a test
        self.stop()
        raise RuntimeError(f"{self.app} not ready after {READY_TIMEOUT_SECONDS} s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_GRACE_SECONDS)


def service_environment(data_dir: Path, workers: int) -> dict[str, str]:
    """The embedded default (SQLite in data_dir, local workers) with `workers` processes."""
    return {"FEEDFORWARD_DATA_DIR": str(data_dir), "FEEDFORWARD_WORKERS": str(workers)}
