"""Restart of an API process (SIGKILL) with Dask jobs in flight.

The scheduler keeps nothing durable, so the restarted API resubmits from the database: queued jobs
run, running ones resume from their checkpoint, and the copies that the dead process left on the
cluster are told to stop.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from distributed import Client, Event

from service.models import TERMINAL_STATUSES
from tests.dask.dask_helpers import blobs_arrays, job_body
from tests.live.live_helpers import FAST_LIFECYCLE, LiveServer
from tests.polling import wait_until

pytestmark = [pytest.mark.dask, pytest.mark.slow, pytest.mark.live, pytest.mark.fault]


@pytest.fixture
def dask_api(dask_scheduler: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A uvicorn subprocess whose jobs run on the test cluster; stopped at teardown."""
    settings = {
        **FAST_LIFECYCLE,
        "workers": 2,
        "executor": "dask",
        "dask_scheduler": dask_scheduler,
    }
    server = LiveServer(tmp_path / "data", settings)
    try:
        yield server.start()
    finally:
        server.stop()


def state(http: httpx.Client, job_id: str) -> dict[str, Any]:
    response = http.get(f"/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def snapshot(http: httpx.Client) -> dict[str, dict[str, Any]]:
    """Every job as one database read saw them (GET /v1/jobs), so their states agree in time."""
    response = http.get("/v1/jobs", params={"limit": 10})
    assert response.status_code == 200, response.text
    return {job["id"]: job for job in response.json()["items"]}


def submit_jobs(http: httpx.Client) -> tuple[list[str], str]:
    """Two long jobs that take both slots, and a short one that must wait while they hold them."""
    X, y = blobs_arrays(21, n_samples=3000)  # about 0.1 s per epoch
    dataset = http.post("/v1/datasets", json={"X": X.tolist(), "y": y.tolist()}).json()
    bodies = [job_body(dataset["id"], epochs=40, seed=seed) for seed in (1, 2)]
    running = [http.post("/v1/jobs", json=body).json()["id"] for body in bodies]
    queued = http.post("/v1/jobs", json=job_body(dataset["id"], epochs=3)).json()["id"]
    return running, queued


def test_killed_api_resubmits_queued_and_resumes_running_jobs_on_restart(
    dask_api: LiveServer, dask_scheduler: str
) -> None:
    with dask_api.client() as http:
        running, queued = submit_jobs(http)

        def both_long_jobs_past_epoch_3() -> bool:
            jobs = snapshot(http)
            long_jobs = [jobs[j] for j in running]
            # The set-up: the long jobs hold both slots side by side on their first attempt. (One
            # that ended first would rightly free its slot for the short job; nothing to test then.)
            assert all(j["status"] in ("queued", "running") and j["attempt"] <= 1
                       for j in long_jobs), f"the long jobs did not run side by side: {jobs}"
            # The promise, at every look: two slots, oldest job first, so the short one waits.
            assert jobs[queued]["status"] == "queued", jobs
            return all(j["status"] == "running" and j["epoch"] >= 3 for j in long_jobs)

        wait_until(both_long_jobs_past_epoch_3, timeout=60,
                   message="both long jobs running past epoch 3")
    dask_api.kill()
    dask_api.start()
    with dask_api.client() as http:
        at_restart = {j: state(http, j)["epoch"] for j in running}
        assert all(epoch >= 3 for epoch in at_restart.values())
        progress: dict[str, list[int]] = {j: [] for j in running}

        def all_finished() -> bool:
            for job_id in running:
                progress[job_id].append(state(http, job_id)["epoch"])
            return all(
                state(http, j)["status"] in ("succeeded", "failed", "cancelled")
                for j in [*running, queued]
            )

        wait_until(all_finished, timeout=180, message="every job to finish after the restart")
        finals = {j: state(http, j) for j in [*running, queued]}
        epochs = {
            j: [row["epoch"] for row in http.get(f"/v1/jobs/{j}/metrics").json()["items"]]
            for j in running
        }
    assert all(final["status"] == "succeeded" for final in finals.values()), finals
    assert [finals[j]["attempt"] for j in running] == [2, 2]
    assert finals[queued]["attempt"] == 1
    for job_id in running:  # resumed from the checkpoint: the epoch never went back to 1
        assert min(progress[job_id]) >= at_restart[job_id]
        assert progress[job_id] == sorted(progress[job_id])
        assert epochs[job_id] == list(range(1, 41))
    with Client(dask_scheduler, set_as_default=False) as client:
        assert all(Event(f"feedforward-cancel-{j}-1", client=client).is_set() for j in running)
    assert dask_api.integrity_check() == "ok"


def test_a_clean_restart_reruns_a_dask_job_without_losing_it(
    dask_scheduler: str, tmp_path: Path
) -> None:
    """SIGTERM requeues the running job. On Dask its attempt's cluster state (started marker,
    the cancel close() sent) outlives the process, so the rerun takes the next attempt number;
    under the old number it ended Lost at once, and failed worker_lost with max_attempts 1."""
    settings = {**FAST_LIFECYCLE, "workers": 1, "executor": "dask",
                "dask_scheduler": dask_scheduler, "max_attempts": 1}
    server = LiveServer(tmp_path / "data", settings).start()
    try:
        with server.client() as http:
            X, y = blobs_arrays(21, n_samples=3000)
            dataset = http.post("/v1/datasets", json={"X": X.tolist(), "y": y.tolist()}).json()
            job_id = http.post("/v1/jobs", json=job_body(dataset["id"], epochs=30)).json()["id"]
            wait_until(lambda: state(http, job_id)["epoch"] >= 3, timeout=60,
                       message="the job to pass epoch 3")
        server.stop()  # SIGTERM: a clean shutdown releases the job to the queue
        server.start()
        with server.client() as http:
            wait_until(lambda: state(http, job_id)["status"] in TERMINAL_STATUSES, timeout=120,
                       message="the job to finish after the restart")
            final = state(http, job_id)
            epochs = [row["epoch"] for row in
                      http.get(f"/v1/jobs/{job_id}/metrics").json()["items"]]
    finally:
        server.stop()
    assert (final["status"], final["attempt"]) == ("succeeded", 2), final
    assert epochs == list(range(1, 31))
