"""Two API processes on one PostgreSQL database share the queue: every job runs exactly once.

Claiming is `SELECT … FOR UPDATE SKIP LOCKED` + `attempt = attempt + 1`, so a job claimed by both
replicas would show attempt 2 (and two runs); each job's `worker_id` names the replica that ran it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, select

from service.db import Database
from service.migrate import upgrade_to_head
from service.models import EpochRecord, Job
from service.settings import Settings
from tests.live.live_helpers import FAST_LIFECYCLE, LiveServer, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.live]

N_JOBS = 50


@pytest.fixture
def replicas(postgres_url: str, tmp_path: Path) -> Iterator[list[LiveServer]]:
    """Two uvicorn processes with two workers each, on one migrated PostgreSQL database."""
    database = Database(Settings(data_dir=tmp_path, database_url=postgres_url))
    upgrade_to_head(database.engine)
    database.dispose()
    settings = {**FAST_LIFECYCLE, "workers": 2, "database_url": postgres_url}
    servers = [LiveServer(tmp_path / f"replica{i}", settings) for i in range(2)]
    try:
        yield [server.start() for server in servers]
    finally:
        for server in servers:
            server.stop()


def test_two_replicas_claim_fifty_jobs_and_none_runs_twice(
    replicas: list[LiveServer], postgres_url: str
) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int).tolist()
    clients = [server.client() for server in replicas]
    dataset = clients[0].post("/v1/datasets", json={"X": X.tolist(), "y": y}).json()
    body = {
        "dataset_id": dataset["id"],
        "epochs": 2,
        "batch_size": 16,
        "seed": 1,
        "network": {"layers": [{"units": 4}, {"units": 2, "activation": "softmax"}]},
    }
    ids = [clients[i % 2].post("/v1/jobs", json=body).json()["id"] for i in range(N_JOBS)]

    def all_done() -> bool:
        listed = clients[1].get("/v1/jobs", params={"status": "succeeded", "limit": 100}).json()
        return bool(listed["total"] == N_JOBS)

    wait_until(all_done, timeout=240, message=f"{N_JOBS} jobs succeed on two replicas")
    for client in clients:
        client.close()
    engine = create_engine(postgres_url)
    with engine.connect() as connection:
        jobs = connection.execute(select(Job.id, Job.attempt, Job.worker_id)).all()
        epochs = connection.execute(select(EpochRecord.job_id, EpochRecord.epoch)).all()
    engine.dispose()
    assert sorted(job.id for job in jobs) == sorted(ids)
    assert {job.attempt for job in jobs} == {1}  # claimed once each
    replica_pids = {str(server.process.pid) for server in replicas if server.process}
    ran_on = {job.worker_id.split(":")[1] for job in jobs}
    assert ran_on == replica_pids  # both replicas took part
    assert sorted(epochs) == sorted((job_id, e) for job_id in ids for e in (1, 2))
