"""A sweep on the local backend: its points train in parallel across the worker processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.polling import eventually
from tests.service.api_helpers import api_client, create_dataset, job_body, make_settings

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_sweep_points_run_in_parallel_on_two_local_workers(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, workers=2)
    async with api_client(settings) as http:
        dataset = await create_dataset(http, n_per_class=300)
        base = job_body(dataset["id"], epochs=30, batch_size=4, validation={"split": 0.2})
        grid = {"optimizer.learning_rate": [0.05, 0.01], "seed": [1, 2]}
        sweep = (await http.post("/v1/sweeps", json={"base": base, "grid": grid})).json()
        most_running = 0

        async def all_succeeded() -> dict[str, Any] | None:
            nonlocal most_running
            state: dict[str, Any] = (await http.get(f"/v1/sweeps/{sweep['id']}")).json()
            most_running = max(most_running, state["status_counts"].get("running", 0))
            return state if state["status_counts"].get("succeeded") == 4 else None

        state = await eventually(all_succeeded, timeout=180, message="all 4 sweep points succeed")
    assert most_running == 2
    best = [job["best"] for job in state["jobs"]]
    assert None not in best and best == sorted(best, reverse=True)
