"""Every endpoint on PostgreSQL: the API in-process on a migrated database, one local worker."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from service.app import create_app
from service.db import Database
from service.migrate import upgrade_to_head
from tests.polling import eventually
from tests.service.api_helpers import (
    assert_problem,
    client,
    create_dataset,
    finished_job,
    iris_like_csv,
    job_body,
    make_settings,
    running_app,
    upload_csv,
)

pytestmark = [pytest.mark.slow, pytest.mark.anyio]



@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def api(postgres_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app on PostgreSQL, migrated first as `feedforward migrate` would, one local worker."""
    settings = make_settings(tmp_path, database_url=postgres_url, workers=1)
    database = Database(settings)
    upgrade_to_head(database.engine)
    database.dispose()
    app = create_app(settings)
    assert app.state.database.engine.dialect.name == "postgresql"
    async with running_app(app), client(app) as http:
        yield http


async def test_datasets_jobs_models_and_operations_on_postgresql(api: httpx.AsyncClient) -> None:
    dataset = await create_dataset(api)
    assert (await api.get(f"/v1/datasets/{dataset['id']}")).json() == dataset
    assert (await api.get("/v1/datasets")).json()["total"] == 1

    body = job_body(dataset["id"], epochs=4, validation={"split": 0.25})
    response = await api.post("/v1/jobs", json=body, headers={"Idempotency-Key": "k1"})
    assert response.status_code == 202, response.text
    job = response.json()
    replay = await api.post("/v1/jobs", json=body, headers={"Idempotency-Key": "k1"})
    assert replay.json()["id"] == job["id"]
    assert_problem(await api.delete(f"/v1/datasets/{dataset['id']}"), 409)

    done = await finished_job(api, job["id"])
    assert done["status"] == "succeeded", done
    metrics = (await api.get(f"/v1/jobs/{job['id']}/metrics")).json()
    assert [row["epoch"] for row in metrics["items"]] == [1, 2, 3, 4]
    async with api.stream("GET", f"/v1/jobs/{job['id']}/events") as stream:
        events = (await stream.aread()).decode()
    assert events.count("event: epoch") == 4 and "event: status" in events
    assert (await api.get("/v1/jobs", params={"status": "succeeded"})).json()["total"] == 1

    await check_model_endpoints(api, done["model_id"], dataset["id"])
    await check_operations(api)
    assert (await api.delete(f"/v1/datasets/{dataset['id']}")).status_code == 204
    assert_problem(await api.get(f"/v1/datasets/{dataset['id']}"), 404)


async def check_model_endpoints(http: httpx.AsyncClient, model_id: str, dataset_id: str) -> None:
    model = (await http.get(f"/v1/models/{model_id}")).json()
    assert model["id"] == model_id and (await http.get("/v1/models")).json()["total"] == 1
    rows = [[0.0, 0.0, 0.0, 0.0], [1.0, -1.0, 2.0, 0.5]]
    predicted = (await http.post(f"/v1/models/{model_id}/predict", json={"inputs": rows})).json()
    assert len(predicted["predictions"]) == 2
    evaluation = await http.post(f"/v1/models/{model_id}/evaluate", json={"dataset_id": dataset_id})
    assert evaluation.status_code == 200 and evaluation.json()["n_samples"] > 0
    targets = predicted["predictions"]
    gradients = await http.post(
        f"/v1/models/{model_id}/gradients", json={"inputs": rows, "targets": targets, "full": True}
    )
    assert gradients.status_code == 200, gradients.text
    weights = await http.get(f"/v1/models/{model_id}/weights")
    with np.load(io.BytesIO(weights.content), allow_pickle=False) as arrays:  # bytea round trip
        assert arrays["W1"].shape == (8, 4) and arrays["W2"].shape == (3, 8)
        as_json = (
            await http.get(f"/v1/models/{model_id}/weights", params={"format": "json"})
        ).json()
        w1 = np.asarray(as_json["arrays"]["W1"], dtype=arrays["W1"].dtype)
        assert np.array_equal(w1, arrays["W1"])
    diagnostics = (await http.get(f"/v1/models/{model_id}/diagnostics")).json()
    assert [epoch["epoch"] for epoch in diagnostics["epochs"]] == [1, 2, 3, 4]


async def check_operations(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).status_code == 200
    ready = await http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert "jobs" in (await http.get("/metrics")).text


async def test_cancel_a_running_job_and_a_sweep_on_postgresql(api: httpx.AsyncClient) -> None:
    upload = await upload_csv(api, iris_like_csv(n_per_class=400), name="bigger")
    dataset_id = upload.json()["id"]
    job = (await api.post("/v1/jobs", json=job_body(dataset_id, epochs=2000, batch_size=1))).json()

    async def first_epoch_done() -> bool:
        return (await api.get(f"/v1/jobs/{job['id']}")).json()["epoch"] >= 1

    await eventually(first_epoch_done, timeout=60, interval=0.05, message="the job's first epoch")
    assert (await api.post(f"/v1/jobs/{job['id']}/cancel")).status_code == 202
    assert (await finished_job(api, job["id"], timeout=30))["status"] == "cancelled"
    assert_problem(await api.post(f"/v1/jobs/{job['id']}/cancel"), 409)

    sweep_body = {
        "base": job_body(dataset_id, epochs=2, validation={"split": 0.2}),
        "grid": {"seed": [1, 2]},
    }
    sweep = (await api.post("/v1/sweeps", json=sweep_body)).json()
    for point in sweep["jobs"]:
        assert (await finished_job(api, point["id"]))["status"] == "succeeded"
    ranked = (await api.get(f"/v1/sweeps/{sweep['id']}")).json()
    assert ranked["status_counts"] == {"succeeded": 2}
    assert ranked["metric"] == "val_accuracy"
    for point in ranked["jobs"]:  # the window query that ranks jobs, checked on PostgreSQL
        rows = (await api.get(f"/v1/jobs/{point['id']}/metrics")).json()["items"]
        best = max(row["val_accuracy"] for row in rows)
        assert point["best"] == best
        assert point["best_epoch"] == next(r["epoch"] for r in rows if r["val_accuracy"] == best)


async def test_owners_are_isolated_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url=postgres_url, api_keys="a:key-a,b:key-b")
    database = Database(settings)
    upgrade_to_head(database.engine)
    database.dispose()
    app: FastAPI = create_app(settings)
    async with running_app(app), client(app, key="key-a") as alice, client(app, key="key-b") as bob:
        dataset = await create_dataset(alice)
        assert_problem(await bob.get(f"/v1/datasets/{dataset['id']}"), 404)
        assert (await bob.get("/v1/datasets")).json()["total"] == 0
