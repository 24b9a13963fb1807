"""D1: a 2xx for an upload, a submission or a cancel is committed — kill -9 right after it loses
nothing.

Each round makes one acknowledged write against a live uvicorn and SIGKILLs the server the moment
the response status arrives (before even reading the body), then starts a new one, which opens
the database after the crash. Servers are forked from one pre-imported process (fork_server.py) so
that fifty restarts take seconds, not minutes. Every object ever acknowledged must be readable
afterwards, in the acknowledged state, and SQLite's integrity check must pass. No workers run, so
a queued job stays queued and a cancel is final.
"""

from __future__ import annotations

import os
import signal
import sqlite3

import httpx
import pytest

from tests.reliability.reliability_helpers import (
    ALICE,
    LiveServer,
    ServerForks,
    blobs_csv,
    server_env,
    small_job,
)

ROUNDS = 102  # 34 uploads, 34 submissions, 34 cancels: 100 and more acknowledged writes


def acknowledged_write(client, pid: int, round_no: int, acked: dict[str, dict]) -> tuple[str, dict]:
    """Make the round's write; SIGKILL the server as soon as a 2xx status line arrives."""
    datasets = [path for path in acked if path.startswith("/v1/datasets/")]
    queued = [path for path, state in acked.items() if state.get("status") == "queued"]
    kind = round_no % 3
    if kind == 0 or not datasets:
        files = {"file": (f"r{round_no}.csv", blobs_csv(seed=round_no), "text/csv")}
        request = client.build_request("POST", "/v1/datasets", files=files)
        expect_status, expected = 201, {"n_samples": 60, "task": "classification"}
    elif kind == 1 or not queued:
        dataset_id = datasets[-1].rsplit("/", 1)[1]
        request = client.build_request("POST", "/v1/jobs", json=small_job(dataset_id))
        expect_status, expected = 202, {"status": "queued"}
    else:
        request = client.build_request("POST", queued[-1] + "/cancel")
        expect_status, expected = 202, {"status": "cancelled"}
    response = client.send(request, stream=True)
    if response.status_code == expect_status:
        os.kill(pid, signal.SIGKILL)  # the ack is on the wire; nothing more happens
    assert response.status_code == expect_status, response.read()[:300]
    response.close()  # the body is never read: the server is already gone
    location = response.headers.get("location") or request.url.path.removesuffix("/cancel")
    return httpx.URL(location).path, expected


def assert_readable(client, acked: dict[str, dict]) -> None:
    for path, expected in acked.items():
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        document = response.json()
        assert {k: document[k] for k in expected} == expected, (path, document)


@pytest.mark.fault
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_acknowledged_writes_survive_sigkill_of_the_api(tmp_path):
    acked: dict[str, dict] = {}
    kills = 0
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    forks = ServerForks(LiveServer(data_dir, server_env(data_dir), []))
    try:
        for round_no in range(ROUNDS):
            pid = forks.start()
            with httpx.Client(base_url=forks.server.base_url, headers=ALICE, timeout=30) as client:
                assert_readable(client, acked)
                location, expected = acknowledged_write(client, pid, round_no, acked)
            acked[location] = expected
            kills += 1
            forks.kill()
        forks.start()
        with httpx.Client(base_url=forks.server.base_url, headers=ALICE, timeout=30) as client:
            assert_readable(client, acked)
    finally:
        forks.close()
    assert kills == ROUNDS
    assert len(acked) == 2 * ROUNDS // 3  # every dataset and job, cancelled ones included
    with sqlite3.connect(data_dir / "feedforward.db") as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
