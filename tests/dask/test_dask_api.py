"""The API with FEEDFORWARD_EXECUTOR=dask, in-process, on a real two-worker cluster."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.models import TERMINAL_STATUSES
from tests.dask.dask_helpers import (
    dask_settings,
    epochs_allowed_after_cancel,
    job_body,
    running_api,
    upload_blobs,
)
from tests.polling import eventually
from tests.service.api_helpers import finished_job

pytestmark = [pytest.mark.dask, pytest.mark.slow, pytest.mark.anyio]

SLOW_DATA = 3000  # rows: about 0.1 s per epoch at batch size 4


async def job_state(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await http.get(f"/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def metric_epochs(http: httpx.AsyncClient, job_id: str) -> list[int]:
    page = (await http.get(f"/v1/jobs/{job_id}/metrics", params={"limit": 1000})).json()
    return [row["epoch"] for row in page["items"]]


async def test_job_trains_on_dask_committing_each_epoch_as_it_ends(
    dask_scheduler: str, tmp_path: Path
) -> None:
    async with running_api(dask_settings(tmp_path, dask_scheduler)) as (_app, http):
        dataset_id = await upload_blobs(http, 11, n_samples=SLOW_DATA)
        job = (await http.post("/v1/jobs", json=job_body(dataset_id, epochs=15))).json()
        committed: set[int] = set()

        async def finished() -> dict[str, Any] | None:
            committed.add(len(await metric_epochs(http, job["id"])))
            state = await job_state(http, job["id"])
            return state if state["status"] in TERMINAL_STATUSES else None

        final = await eventually(finished, timeout=120, message="the job to finish")
        assert final["status"] == "succeeded", final
        assert (final["epoch"], final["attempt"]) == (15, 1)
        assert await metric_epochs(http, job["id"]) == list(range(1, 16))
        assert any(0 < count < 15 for count in committed)  # rows appeared while it trained
        model_id = final["model_id"]
        predicted = await http.post(f"/v1/models/{model_id}/predict", json={"inputs": [[0.0] * 8]})
        assert predicted.status_code == 200, predicted.text
        diagnostics = (await http.get(f"/v1/models/{model_id}/diagnostics")).json()
        assert [epoch["epoch"] for epoch in diagnostics["epochs"]] == list(range(1, 16))


async def test_sweep_points_train_in_parallel_on_both_workers_from_one_scatter(
    dask_scheduler: str, tmp_path: Path
) -> None:
    async with running_api(dask_settings(tmp_path, dask_scheduler)) as (app, http):
        dataset_id = await upload_blobs(http, 12, n_samples=SLOW_DATA)
        grid = {"optimizer.learning_rate": [0.05, 0.01], "seed": [1, 2]}
        body = {"base": job_body(dataset_id, epochs=15), "grid": grid}
        sweep = (await http.post("/v1/sweeps", json=body)).json()
        executor = app.state.supervisor.executor
        workers: set[str] = set()
        most_at_once = 0

        async def all_succeeded() -> dict[str, Any] | None:
            nonlocal most_at_once
            placed = executor.job_workers()
            workers.update(place["worker"] for place in placed.values())
            most_at_once = max(most_at_once, len(placed))
            state = (await http.get(f"/v1/sweeps/{sweep['id']}")).json()
            return state if state["status_counts"].get("succeeded") == 4 else None

        final = await eventually(all_succeeded, timeout=180, message="4 sweep points to succeed")
        assert len(workers) == 2 and most_at_once == 2
        best = [job["best"] for job in final["jobs"]]
        assert None not in best and best == sorted(best, reverse=True)
        assert executor.scatter_count == 1  # four jobs, one dataset sent once


async def test_cancel_stops_a_running_dask_job_within_an_epoch(
    dask_scheduler: str, tmp_path: Path
) -> None:
    async with running_api(dask_settings(tmp_path, dask_scheduler)) as (_app, http):
        dataset_id = await upload_blobs(http, 13, n_samples=SLOW_DATA)
        job = (await http.post("/v1/jobs", json=job_body(dataset_id, epochs=300))).json()

        async def two_epochs() -> dict[str, Any] | None:
            state = await job_state(http, job["id"])
            return state if state["epoch"] >= 2 else None

        await eventually(two_epochs, timeout=60, message="two epochs")
        cancelled = await http.post(f"/v1/jobs/{job['id']}/cancel")
        assert cancelled.status_code == 202
        at_cancel = cancelled.json()["epoch"]  # committed epochs when the cancel was recorded

        final = await finished_job(http, job["id"], timeout=30)
        assert final["status"] == "cancelled" and final["model_id"] is None
        allowed = epochs_allowed_after_cancel(final["metrics"]["seconds"])
        assert final["epoch"] - at_cancel <= allowed < 300 - at_cancel


async def test_killed_worker_job_resumes_from_its_checkpoint_on_another_worker(
    dask_scheduler: str, tmp_path: Path
) -> None:
    settings = dask_settings(tmp_path, dask_scheduler)
    async with running_api(settings) as (app, http):
        dataset_id = await upload_blobs(http, 14, n_samples=SLOW_DATA)
        job = (await http.post("/v1/jobs", json=job_body(dataset_id, epochs=25))).json()
        executor = app.state.supervisor.executor

        async def placed_after_three_epochs() -> dict[str, Any] | None:
            state = await job_state(http, job["id"])
            return executor.job_workers().get(job["id"]) if state["epoch"] >= 3 else None

        first = await eventually(placed_after_three_epochs, timeout=60, message="3 epochs")
        os.kill(first["pid"], signal.SIGKILL)
        epochs_seen: list[int] = []
        places: set[str] = set()

        async def finished() -> dict[str, Any] | None:
            state = await job_state(http, job["id"])
            epochs_seen.append(state["epoch"])
            place = executor.job_workers().get(job["id"])
            if place is not None and place["attempt"] == 2:
                places.add(place["worker"])
            return state if state["status"] in TERMINAL_STATUSES else None

        final = await eventually(finished, timeout=120, message="the resumed job to finish")
        assert final["status"] == "succeeded", final
        assert final["attempt"] == 2
        assert epochs_seen == sorted(epochs_seen) and epochs_seen[0] >= 3  # resumed, not restarted
        assert places and first["worker"] not in places
        assert await metric_epochs(http, job["id"]) == list(range(1, 26))
