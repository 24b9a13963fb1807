"""What the service benchmark does over HTTP: upload, submit, poll, time requests."""

from __future__ import annotations

import datetime as dt
import io
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

TERMINAL = {"succeeded", "failed", "cancelled"}
POLL_SECONDS = 0.05
TIMED_JOB_POLL_SECONDS = 0.5  # timed jobs are measured on the server's clock; polling costs CPU


def upload_arrays(client: httpx.Client, X: np.ndarray, y: np.ndarray, name: str) -> str:
    buffer = io.BytesIO()
    np.savez(buffer, X=X, y=y)
    files = {"file": (f"{name}.npz", buffer.getvalue(), "application/octet-stream")}
    form = {"name": name, "task": "classification"}
    return _created(client.post("/v1/datasets", files=files, data=form))["id"]


def upload_csv(client: httpx.Client, path: Path) -> str:
    files = {"file": (path.name, path.read_bytes(), "text/csv")}
    return _created(client.post("/v1/datasets", files=files, data={"name": path.stem}))["id"]


def submit(client: httpx.Client, body: dict[str, Any]) -> str:
    return _created(client.post("/v1/jobs", json=body))["id"]


def _created(response: httpx.Response) -> dict[str, Any]:
    if response.status_code not in (201, 202):
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text[:500]}")
    return response.json()


def wait_for(client: httpx.Client, job_id: str, statuses: set[str], timeout: float,
             poll: float = POLL_SECONDS) -> dict:
    """Poll GET /v1/jobs/{id} until its status is in `statuses`; returns the job."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        if job["status"] in TERMINAL:
            raise RuntimeError(f"job {job_id} ended {job['status']}: {job.get('error')}")
        time.sleep(poll)  # polling a remote job with a deadline
    raise TimeoutError(f"job {job_id} not {statuses} after {timeout} s")


def timed_job(client: httpx.Client, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Submit and wait for success. Seconds on the server's clock from submission (created_at)
    and from the worker's start (started_at) to finished_at; the client's view is coarse."""
    started = time.perf_counter()
    job = wait_for(client, submit(client, body), {"succeeded"}, timeout, TIMED_JOB_POLL_SECONDS)
    client_seconds = time.perf_counter() - started
    finished = _timestamp(job["finished_at"])
    seconds = (finished - _timestamp(job["created_at"])).total_seconds()
    server = (finished - _timestamp(job["started_at"])).total_seconds()
    rows = client.get(f"/v1/jobs/{job['id']}/metrics", params={"limit": 1000}).json()["items"]
    return {"seconds": seconds, "server_seconds": server, "client_seconds": client_seconds,
            "model_id": job["model_id"], "epoch_seconds": [row["seconds"] for row in rows],
            "job": job}


def _timestamp(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def latencies(client: httpx.Client, method: str, paths: list[str], count: int,
              content: bytes | None = None) -> dict[str, list[float]]:
    """`count` sequential requests cycling over `paths` (keep-alive), in seconds: "client" round
    trips, and "server" times from a Server-Timing header (empty for servers without one)."""
    headers = {"content-type": "application/json"} if content is not None else None
    client_seconds, server_seconds = [], []
    for index in range(count):
        started = time.perf_counter()
        response = client.request(method, paths[index % len(paths)], content=content,
                                  headers=headers)
        response.read()
        client_seconds.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"{method} {paths[0]}: {response.status_code} {response.text[:300]}")
        server = _server_timing(response.headers.get("server-timing", ""))
        if server is not None:
            server_seconds.append(server)
    return {"client": client_seconds, "server": server_seconds}


def _server_timing(header: str) -> float | None:
    """Seconds from a Server-Timing header such as `app;dur=12.34` (milliseconds)."""
    for metric in header.split(","):
        for part in metric.split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key == "dur":
                return float(value) / 1e3
    return None


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))
