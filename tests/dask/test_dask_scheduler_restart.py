"""A scheduler that restarts loses every task and dataset: the executor reports its jobs lost,
reconnects when the scheduler is back, sends the datasets again and runs the resubmitted jobs."""

from __future__ import annotations

from pathlib import Path

import pytest
from distributed import LocalCluster

from service.jobs.dask import DaskExecutor
from service.jobs.executor import Epoch, Finished, Lost
from service.settings import Settings
from tests.dask.dask_helpers import Loader, blobs_npz, payload
from tests.live.live_helpers import free_port
from tests.polling import wait_until
from tests.service.jobs_fakes import collect, concluded, outcome

pytestmark = [pytest.mark.dask, pytest.mark.slow, pytest.mark.fault]


def cluster_on(port: int) -> LocalCluster:
    return LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        scheduler_port=port,
        dashboard_address="127.0.0.1:0",
    )


def test_jobs_survive_a_scheduler_restart_by_resubmission(tmp_path: Path) -> None:
    port = free_port()
    dataset = blobs_npz(31, n_samples=3000)
    settings = Settings(
        data_dir=tmp_path, executor="dask", dask_scheduler=f"tcp://127.0.0.1:{port}", workers=1
    )
    first = cluster_on(port)
    executor = DaskExecutor(settings, load_dataset=Loader(dataset))
    try:
        executor.start()
        executor.submit(payload("r1", dataset[1], epochs=30, batch_size=4))
        events = collect(executor, lambda ev: any(isinstance(e, Epoch) for e in ev))
        first.close()
        events += collect(executor, concluded("r1"))
        assert isinstance(outcome(events, "r1"), Lost)
        last = [e for e in events if isinstance(e, Epoch)][-1]
        checkpoint = last.checkpoint

        with cluster_on(port):
            def reconnected() -> bool:
                if executor.capacity() > 0:
                    return True
                executor.poll(0.2)
                return False

            wait_until(reconnected, timeout=60, message="reconnection to the new scheduler")
            assert executor.is_healthy()
            executor.submit(
                payload(
                    "r1", dataset[1], epochs=30, batch_size=4, attempt=2, resume_from=checkpoint
                )
            )
            after = collect(executor, concluded("r1"))
            resumed = outcome(after, "r1")
            assert isinstance(resumed, Finished) and resumed.result["status"] == "succeeded"
            epochs = [e.report["epoch"] for e in after if isinstance(e, Epoch)]
            assert epochs == list(range(last.report["epoch"] + 1, 31))
            assert executor.scatter_count == 2  # the new scheduler had to get the data again
    finally:
        executor.close()
        first.close()
