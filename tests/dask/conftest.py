"""A real Dask cluster for the tests in this directory: a scheduler and two single-threaded worker
processes, each under a nanny (a killed worker is replaced), on 127.0.0.1, closed after the session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from distributed import Client, LocalCluster

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
    """The scheduler address, with both workers up and no data left over from earlier tests."""
    with Client(dask_cluster.scheduler_address, set_as_default=False) as client:
        client.wait_for_workers(N_WORKERS, timeout=120)  # a killed worker may be restarting
        yield dask_cluster.scheduler_address


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
