"""A real Dask cluster for the tests in this directory: a scheduler and two single-threaded worker
processes, each under a nanny (a killed worker is replaced), on 127.0.0.1, closed after the session.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest
from distributed import Client, LocalCluster

from tests.polling import wait_until

N_WORKERS = 2


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[LocalCluster]:
    cluster = LocalCluster(
        n_workers=N_WORKERS,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        # The scheduler serves HTTP (metrics, health) even without a dashboard, by default on
        # :8787; a free loopback port keeps it from colliding with any other cluster on the box.
        dashboard_address="127.0.0.1:0",
    )
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def dask_scheduler(dask_cluster: LocalCluster) -> Iterator[str]:
    """The scheduler address, with both workers up, idle and warm: a worker that an earlier test
    killed comes back without the job code imported, and would start its first job seconds after
    the other worker starts its own (enough for a short job to finish first on a busy machine)."""
    with Client(dask_cluster.scheduler_address, set_as_default=False) as client:
        client.wait_for_workers(N_WORKERS, timeout=120)  # a killed worker may be restarting
        wait_until(lambda: not any(client.processing().values()), timeout=60,
                   message="no task left on the cluster by an earlier test")
        client.run(_import_the_job_code)
        yield dask_cluster.scheduler_address


def _import_the_job_code() -> None:
    importlib.import_module("service.jobs.dask_worker")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
