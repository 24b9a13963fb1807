"""Shared helpers for the reliability proofs: settings, in-process clients, a live uvicorn, RSS.

The live server is a real `uvicorn` subprocess on 127.0.0.1 and a free port, with its own data
directory; tests can SIGKILL it (durability) or read its memory from /proc (limits).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import numpy as np

from service.settings import Settings
from tests.live.live_helpers import free_port
from tests.polling import wait_until
from tests.service.api_helpers import npz_bytes as npz_bytes
from tests.service.api_helpers import strict_json as strict_json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
KEYS = {"alice": "key-alice-0123456789", "bob": "key-bob-0123456789"}
API_KEYS = ",".join(f"{owner}:{key}" for owner, key in KEYS.items())
ALICE = {"Authorization": f"Bearer {KEYS['alice']}"}
BOB = {"Authorization": f"Bearer {KEYS['bob']}"}
BASE_URL = "http://localhost"
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect",
                          "/redoc"})  # fmt: skip


def reliability_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir, "workers": 0, "api_keys": API_KEYS, "log_level": "CRITICAL",
        "poll_seconds": 0.05, "blas_threads": 1,
    }  # fmt: skip
    return Settings(**(values | overrides))


def make_app(data_dir: Path, **overrides: Any) -> Any:
    """The real app for these settings (imported late: tests without the app still collect)."""
    from service.app import create_app

    return create_app(reliability_settings(data_dir, **overrides))


# --- in-process client -----------------------------------------------------------------------


class InProcessClient:
    """A synchronous httpx client on the app, with its lifespan entered (migrations, supervisor).

    Starlette's TestClient warns about httpx (an error under filterwarnings=error), so this drives
    httpx.AsyncClient + ASGITransport from a blocking anyio portal instead. Responses are buffered:
    no streaming endpoints here.
    """

    def __init__(self, app: Any, headers: dict[str, str] | None = None) -> None:
        self.app = app
        self._portal_context = anyio.from_thread.start_blocking_portal()
        self.portal = self._portal_context.__enter__()
        self._lifespan = self.portal.wrap_async_context_manager(app.router.lifespan_context(app))
        self._lifespan.__enter__()
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        chosen = headers if headers is not None else ALICE
        self.http = httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=chosen)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.portal.call(lambda: self.http.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("OPTIONS", url, **kwargs)

    def close(self) -> None:
        self.portal.call(self.http.aclose)
        self._lifespan.__exit__(None, None, None)
        self._portal_context.__exit__(None, None, None)

    def __enter__(self) -> InProcessClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- data ----------------------------------------------------------------------------------------


def blobs_csv(n_rows: int = 60, n_features: int = 4, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    labels = np.array(["red", "green", "blue"])[rng.integers(0, 3, n_rows)]
    X = rng.standard_normal((n_rows, n_features))
    header = ",".join([*(f"f{j}" for j in range(n_features)), "color"])
    rows = [",".join([*(f"{v:.5f}" for v in x), str(c)]) for x, c in zip(X, labels, strict=True)]
    return ("\n".join([header, *rows]) + "\n").encode()


def small_job(dataset_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "dataset_id": dataset_id,
        "network": {"layers": [{"type": "dense", "units": 4, "activation": "tanh"},
                               {"type": "dense", "units": 3, "activation": "softmax"}]},
        "optimizer": {"name": "sgd", "learning_rate": 0.1},
        "epochs": 2, "batch_size": 16, "seed": 0,
    }  # fmt: skip
    return body | overrides


# --- memory --------------------------------------------------------------------------------------


def rss_bytes(pid: int, field_name: str = "VmRSS") -> int:
    """Resident memory of a process (VmRSS) or its peak so far (VmHWM), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field_name)


def reset_peak_rss(pid: int) -> None:
    """Restart VmHWM from the current RSS (Linux clear_refs "5"), so a peak is this test's own."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


# --- live server ---------------------------------------------------------------------------------


@dataclass
class LiveServer:
    data_dir: Path
    env: dict[str, str]
    extra_args: list[str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, *, timeout: float = 30.0) -> LiveServer:
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "service.app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--timeout-graceful-shutdown",
            "5",
            *self.extra_args,
        ]
        log = (self.data_dir / "server.log").open("ab")
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=log)
        log.close()
        try:
            wait_until(self._healthy, timeout=timeout, interval=0.1, message="/healthz answers")
        except AssertionError as timed_out:
            self.kill()
            raise RuntimeError(f"uvicorn did not become healthy:\n{self.log_tail()}") from timed_out
        return self

    def _healthy(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"uvicorn exited early:\n{self.log_tail()}")
        try:
            return httpx.get(self.base_url + "/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL, the way a crash or the OOM killer ends a process."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, n_chars: int = 4000) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace")[-n_chars:] if path.exists() else ""

    def client(self, headers: dict[str, str] | None = None, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers=headers or ALICE, timeout=timeout)


def server_env(data_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDFORWARD_")}
    env.update({"FEEDFORWARD_DATA_DIR": str(data_dir), "FEEDFORWARD_API_KEYS": API_KEYS,
                "FEEDFORWARD_WORKERS": "0", "FEEDFORWARD_LOG_LEVEL": "WARNING"})  # fmt: skip
    env.update({f"FEEDFORWARD_{name.upper()}": value for name, value in settings.items()})
    return env


class ServerForks:
    """Servers forked from one pre-imported process (fork_server.py), for many fast restarts."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        command = [sys.executable, str(HERE / "fork_server.py"), str(server.port)]
        env = {**server.env, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        with (server.data_dir / "server.log").open("ab") as log:
            self.parent = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, stderr=log)  # fmt: skip
        self.pid: int | None = None

    def start(self, *, timeout: float = 30.0) -> int:
        """Fork a server and wait until it answers /healthz; returns its pid."""
        assert self.parent.stdin is not None and self.parent.stdout is not None
        self.parent.stdin.write(b"go\n")
        self.parent.stdin.flush()
        self.pid = int(self.parent.stdout.readline())
        try:
            wait_until(self._healthy, timeout=timeout, message="the forked server answers /healthz")
        except AssertionError as timed_out:
            raise RuntimeError(
                f"the forked server did not become healthy:\n{self.server.log_tail()}"
            ) from timed_out
        return self.pid

    def _healthy(self) -> bool:
        try:
            return httpx.get(self.server.base_url + "/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL the current server and wait until it is gone."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            pid = self.pid
            wait_until(lambda: not _alive(pid), timeout=10, message=f"killed server {pid} is gone")
            self.pid = None

    def close(self) -> None:
        self.kill()
        self.parent.kill()
        self.parent.wait(timeout=10)


def _alive(pid: int | None) -> bool:
    """True while `pid` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


@contextmanager
def live_server(
    data_dir: Path, *, extra_args: list[str] | None = None, **settings: str
) -> Iterator[LiveServer]:
    data_dir.mkdir(parents=True, exist_ok=True)
    server = LiveServer(data_dir, server_env(data_dir, **settings), extra_args or [])
    try:
        yield server.start()
    finally:
        server.stop()
