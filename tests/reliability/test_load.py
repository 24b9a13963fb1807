"""A2 and A3 on loopback: health keeps answering while every worker trains; overload beyond
uvicorn's --limit-concurrency is answered 503 and the server recovers.

A threaded httpx client is the load generator (no extra dependency). On 2 cores it competes with
the server and the workers, which is the point. Nothing here is timed: a request that hangs fails
on its client timeout, and latency targets live in bench/.
"""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.polling import wait_until
from tests.reliability.reliability_helpers import ALICE, ROOT, live_server

pytestmark = [pytest.mark.load, pytest.mark.live, pytest.mark.slow]

N_WORKERS = 2
HEALTH_REQUESTS = 300  # per client, all while both workers train
HEALTH_CLIENTS = 2  # a probe and a monitor; more threads would measure the load generator


def long_job(dataset_id: str) -> dict:
    """Digits with one sample per step: about 2 epochs a second per worker, so each epoch's commit
    is a realistic load on the API process (not dozens per second)."""
    return {
        "dataset_id": dataset_id,
        "network": {"layers": [{"type": "dense", "units": 64, "activation": "tanh"},
                               {"type": "dense", "units": 10, "activation": "softmax"}]},
        "epochs": 5000, "batch_size": 1, "seed": 0,
    }  # fmt: skip


def hammer(base_url: str, path: str, count: int) -> list[str]:
    """GET `path` `count` times back to back; the failures (errors and non-200 statuses)."""
    failures = []
    with httpx.Client(base_url=base_url, timeout=5.0) as client:
        for _ in range(count):
            try:
                status = client.get(path).status_code
            except httpx.HTTPError as exc:
                failures.append(repr(exc))
                continue
            if status != 200:
                failures.append(str(status))
    return failures


def test_health_keeps_answering_while_every_worker_trains(tmp_path):
    with live_server(tmp_path / "data", workers=str(N_WORKERS)) as server, server.client() as api:
        digits = (ROOT / "examples" / "digits.csv").read_bytes()
        dataset = api.post("/v1/datasets", files={"file": ("digits.csv", digits, "text/csv")})
        jobs = [api.post("/v1/jobs", json=long_job(dataset.json()["id"])).json()["id"]
                for _ in range(N_WORKERS)]  # fmt: skip

        def all_training() -> bool:
            states = [api.get(f"/v1/jobs/{job}").json() for job in jobs]
            return all(s["status"] == "running" and (s["epoch"] or 0) >= 1 for s in states)

        wait_until(all_training, timeout=60, interval=0.2, message="every worker trains")
        with ThreadPoolExecutor(HEALTH_CLIENTS) as pool:
            runs = list(pool.map(lambda _: hammer(server.base_url, "/healthz", HEALTH_REQUESTS),
                                 range(HEALTH_CLIENTS)))  # fmt: skip
        assert all_training(), "the workers stopped training while health was probed"
        for job in jobs:
            assert api.post(f"/v1/jobs/{job}/cancel").status_code in (200, 202)
    assert [f for failures in runs for f in failures] == []


def hold_connections(port: int, count: int) -> list[socket.socket]:
    held = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        held.append(sock)
    return held


def test_overload_beyond_the_concurrency_limit_gets_503_and_recovers(tmp_path):
    limit = 8
    with live_server(tmp_path / "data", extra_args=["--limit-concurrency", str(limit)]) as server:
        held = hold_connections(server.port, limit)  # idle keep-alive clients fill every slot
        try:
            with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
                refused = client.get("/healthz")  # a time-out raises and fails the test
            assert refused.status_code == 503
        finally:
            for sock in held:
                sock.close()
        wait_until(lambda: _healthy(server.base_url), timeout=20.0, message="health recovers")

        statuses: list[int] = []
        lock = threading.Lock()

        def burst(_: int) -> None:
            with httpx.Client(base_url=server.base_url, headers=ALICE, timeout=10.0) as client:
                status = client.get("/v1/jobs").status_code  # a time-out raises and fails the test
            with lock:
                statuses.append(status)

        with ThreadPoolExecutor(64) as pool:
            list(pool.map(burst, range(256)))
        assert set(statuses) == {200, 503}  # some served, the excess refused, nothing else
        wait_until(lambda: _healthy(server.base_url), timeout=20.0,
                   message="health recovers after the burst")  # fmt: skip


def _healthy(base_url: str) -> bool:
    try:
        return httpx.get(base_url + "/healthz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False
