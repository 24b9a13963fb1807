"""The real thing: uvicorn on 127.0.0.1, a SQLite file, worker processes, SIGKILL.

Full flow (upload → train → events → predict → weights → diagnostics), cancel, a killed worker, a
hung worker, and a killed server restarted on the same data directory, whose interrupted job resumes
from its checkpoint and ends bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import io
import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.live.live_helpers import LiveServer, wait_until

pytestmark = [pytest.mark.live, pytest.mark.slow]

DIGITS_CSV = Path(__file__).resolve().parents[2] / "examples" / "digits.csv"
TERMINAL = ("succeeded", "failed", "cancelled")


def upload_digits(client: httpx.Client) -> dict[str, Any]:
    with DIGITS_CSV.open("rb") as csv:
        response = client.post("/v1/datasets", files={"file": ("digits.csv", csv, "text/csv")},
                               data={"name": "digits", "target": "digit"})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def submit(client: httpx.Client, dataset_id: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "dataset_id": dataset_id, "validation": {"split": 0.2},
        "network": {"layers": [{"units": 32, "activation": "tanh"},
                               {"units": 10, "activation": "softmax"}]},
        "optimizer": {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9},
        "batch_size": 32, "epochs": 5, "seed": 11,
    } | overrides
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


# Epochs long enough (~0.1–0.5 s on 2 cores) to kill or cancel a job in the middle of its run.
SLOW_NETWORK = {"layers": [{"units": 512, "activation": "tanh"},
                           {"units": 512, "activation": "tanh"},
                           {"units": 10, "activation": "softmax"}]}


def submit_slow(client: httpx.Client, dataset_id: str, epochs: int, **overrides: Any) -> dict:
    return submit(client, dataset_id, network=SLOW_NETWORK, batch_size=16, epochs=epochs,
                  **overrides)


def job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def wait_for_job(client: httpx.Client, job_id: str, *statuses: str, timeout: float = 60.0,
                 min_epoch: int = 0) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        current = job(client, job_id)
        return current if current["status"] in statuses and current["epoch"] >= min_epoch else None

    return wait_until(reached, timeout=timeout, message=f"job {job_id} {statuses} ≥ {min_epoch}")


def events(server: LiveServer, job_id: str, timeout: float = 120.0) -> list[tuple[str, dict]]:
    """Read the job's event stream to its end; (event, data) pairs in arrival order."""
    received: list[tuple[str, dict]] = []
    name, data = "message", []
    with httpx.stream("GET", f"{server.url}/v1/jobs/{job_id}/events", timeout=timeout) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("event:"):
                name = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data.append(line.partition(":")[2].strip())
            elif line == "" and data:
                received.append((name, json.loads("\n".join(data))))
                name, data = "message", []
    return received


def weights(client: httpx.Client, model_id: str) -> dict[str, np.ndarray]:
    response = client.get(f"/v1/models/{model_id}/weights")
    assert response.status_code == 200, response.text
    with np.load(io.BytesIO(response.content), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def assert_same_arrays(left: dict[str, np.ndarray], right: dict[str, np.ndarray]) -> None:
    assert left.keys() == right.keys()
    for name in left:
        assert np.array_equal(left[name], right[name]), f"{name} differs"


def metrics(client: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/jobs/{job_id}/metrics", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


def digits_rows(count: int) -> list[list[float]]:
    lines = DIGITS_CSV.read_text().splitlines()[1 : count + 1]
    return [[float(v) for v in line.split(",")[:-1]] for line in lines]


def predict(client: httpx.Client, model_id: str, rows: list[list[float]]) -> dict[str, Any]:
    response = client.post(f"/v1/models/{model_id}/predict", json={"inputs": rows})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


# --- tests -------------------------------------------------------------------------------------


def test_full_flow_upload_train_stream_predict_weights_diagnostics(live_server):
    server = live_server(workers=1)
    with server.client() as client:
        dataset = upload_digits(client)
        created = submit(client, dataset["id"], epochs=6)
        stream = events(server, created["id"])

        epochs = [data["epoch"] for name, data in stream if name == "epoch"]
        statuses = [data["status"] for name, data in stream if name == "status"]
        assert epochs == [1, 2, 3, 4, 5, 6]
        assert statuses[-1] == "succeeded" and set(statuses) <= {"queued", "running", "succeeded"}
        assert all(data["val_accuracy"] is not None for name, data in stream if name == "epoch")

        finished = job(client, created["id"])
        assert finished["epoch"] == 6 and finished["model_id"]
        model_id = finished["model_id"]
        late = events(server, created["id"])  # a late client gets the finished epochs first
        assert [d["epoch"] for n, d in late if n == "epoch"] == epochs
        assert [d["status"] for n, d in late if n == "status"] == ["succeeded"]

        prediction = predict(client, model_id, digits_rows(50))
        assert len(prediction["predictions"]) == 50
        accuracy = np.mean(np.array(prediction["predictions"]) == _digits_labels(50))
        assert accuracy > 0.8

        arrays = weights(client, model_id)
        assert arrays["W1"].shape == (32, 64) and arrays["W2"].shape == (10, 32)
        as_json = client.get(f"/v1/models/{model_id}/weights", params={"format": "json"})
        assert as_json.status_code == 200
        assert np.array_equal(np.array(as_json.json()["arrays"]["W1"], dtype=np.float32),
                              arrays["W1"])

        diagnostics = client.get(f"/v1/models/{model_id}/diagnostics").json()
        assert [e["epoch"] for e in diagnostics["epochs"]] == epochs
        assert [layer["layer"] for layer in diagnostics["epochs"][0]["layers"]] == [1, 2]
    assert server.integrity_check() == "ok"


def _digits_labels(count: int) -> np.ndarray:
    lines = DIGITS_CSV.read_text().splitlines()[1 : count + 1]
    return np.array([int(line.rsplit(",", 1)[1]) for line in lines])


def test_cancel_ends_a_running_job_cancelled_without_a_model(live_server):
    server = live_server(workers=1)
    with server.client() as client:
        dataset = upload_digits(client)
        created = submit_slow(client, dataset["id"], epochs=1000)
        wait_for_job(client, created["id"], "running", min_epoch=1)

        response = client.post(f"/v1/jobs/{created['id']}/cancel")
        assert response.status_code == 202, response.text
        ended = wait_for_job(client, created["id"], *TERMINAL, timeout=10.0)

        assert ended["status"] == "cancelled" and ended["model_id"] is None
        assert client.get("/v1/models").json()["total"] == 0
        assert client.post(f"/v1/jobs/{created['id']}/cancel").status_code == 409
    assert server.integrity_check() == "ok"


@pytest.mark.fault
def test_a_hung_worker_is_killed_on_cancel_and_replaced(live_server):
    server = live_server(workers=1)
    with server.client() as client:
        dataset = upload_digits(client)
        hung = submit_slow(client, dataset["id"], epochs=1000)
        wait_for_job(client, hung["id"], "running", min_epoch=1)
        (worker,) = server.worker_pids()
        os.kill(worker, signal.SIGSTOP)  # a worker that never looks at its cancel flag again

        assert client.post(f"/v1/jobs/{hung['id']}/cancel").status_code == 202
        assert wait_for_job(client, hung["id"], *TERMINAL, timeout=20.0)["status"] == "cancelled"

        after = submit(client, dataset["id"], epochs=2)
        assert wait_for_job(client, after["id"], *TERMINAL)["status"] == "succeeded"
        assert worker not in server.worker_pids()
    assert server.integrity_check() == "ok"


@pytest.mark.fault
def test_a_worker_killed_mid_epoch_resumes_its_job_which_succeeds(live_server):
    server = live_server(workers=1)
    with server.client() as client:
        dataset = upload_digits(client)
        created = submit_slow(client, dataset["id"], epochs=8)
        before = wait_for_job(client, created["id"], "running", min_epoch=2)
        (worker,) = server.worker_pids()

        os.kill(worker, signal.SIGKILL)

        finished = wait_for_job(client, created["id"], *TERMINAL, timeout=120.0)
        assert finished["status"] == "succeeded" and finished["attempt"] == 2
        rows = metrics(client, created["id"])
        assert [row["epoch"] for row in rows] == list(range(1, 9))
        assert rows[before["epoch"] - 1] == before["metrics"]  # kept, not recomputed
    assert server.integrity_check() == "ok"


@pytest.mark.fault
def test_sigkill_of_the_server_loses_nothing_and_the_interrupted_job_resumes(live_server):
    server = live_server(workers=1)
    with server.client() as client:
        dataset = upload_digits(client)
        done = submit(client, dataset["id"], epochs=3)
        done = wait_for_job(client, done["id"], "succeeded")
        rows = digits_rows(20)
        predictions_before = predict(client, done["model_id"], rows)

        interrupted = submit_slow(client, dataset["id"], epochs=6)
        queued = [submit(client, dataset["id"], epochs=2, seed=s) for s in (1, 2)]
        seen = wait_for_job(client, interrupted["id"], "running", min_epoch=2)
        kept_rows = metrics(client, interrupted["id"])
    server.kill()
    assert server.integrity_check() == "ok"

    server.start()
    with server.client() as client:
        listing = client.get("/v1/jobs", params={"limit": 100}).json()["items"]
        listed = {item["id"] for item in listing}
        assert {done["id"], interrupted["id"], *(q["id"] for q in queued)} <= listed
        assert predict(client, done["model_id"], rows) == predictions_before

        resumed = wait_for_job(client, interrupted["id"], *TERMINAL, timeout=180.0)
        assert resumed["status"] == "succeeded" and resumed["attempt"] == 2
        rows_after = metrics(client, interrupted["id"])
        assert [row["epoch"] for row in rows_after] == list(range(1, 7))
        assert rows_after[: len(kept_rows)] == kept_rows  # epochs before the kill were not redone
        assert len(kept_rows) >= seen["epoch"]
        for queued_job in queued:
            assert wait_for_job(client, queued_job["id"], *TERMINAL)["status"] == "succeeded"
        assert all(j["status"] != "running" for j in client.get("/v1/jobs").json()["items"])

        uninterrupted = submit_slow(client, dataset["id"], epochs=6)
        uninterrupted = wait_for_job(client, uninterrupted["id"], *TERMINAL, timeout=180.0)
        assert uninterrupted["status"] == "succeeded" and uninterrupted["attempt"] == 1
        assert_same_arrays(weights(client, resumed["model_id"]),
                           weights(client, uninterrupted["model_id"]))
    server.stop()
    assert server.integrity_check() == "ok"
