"""DaskExecutor against a real two-worker cluster: progress, dataset reuse, cancel, lost workers."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from distributed import Client

import service.jobs.dask as dask_executor_module
from engine.model import Model
from service.jobs.dask import DaskExecutor
from service.jobs.dask_worker import INLINE_CHECKPOINT_BYTES
from service.jobs.executor import Epoch, Failed, Finished, JobPayload, Lost
from service.settings import Settings
from tests.dask.dask_helpers import Loader, blobs_npz, epochs_allowed_after_cancel, payload
from tests.polling import wait_until
from tests.service.jobs_fakes import collect, concluded, outcome

pytestmark = [pytest.mark.dask, pytest.mark.slow]


@pytest.fixture
def make_executor(dask_scheduler: str, tmp_path: Any) -> Iterator[Callable[[Loader], DaskExecutor]]:
    made: list[DaskExecutor] = []

    def make(loader: Loader) -> DaskExecutor:
        settings = Settings(
            data_dir=tmp_path, executor="dask", dask_scheduler=dask_scheduler, workers=2
        )
        executor = DaskExecutor(settings, load_dataset=loader)
        executor.start()
        made.append(executor)
        return executor

    yield make
    for executor in made:
        executor.close()


def test_job_trains_and_reports_each_epoch_with_its_checkpoint(make_executor: Any) -> None:
    dataset = blobs_npz(1)
    executor = make_executor(Loader(dataset))
    executor.submit(payload("job-a", dataset[1], epochs=3))
    events = collect(executor, concluded("job-a"))
    epochs = [e for e in events if isinstance(e, Epoch)]
    assert [e.report["epoch"] for e in epochs] == [1, 2, 3]
    assert all(e.checkpoint for e in epochs)
    assert all(0.0 <= e.report["metrics"]["val_accuracy"] <= 1.0 for e in epochs)
    finished = outcome(events, "job-a")
    assert isinstance(finished, Finished) and finished.result["status"] == "succeeded"
    assert finished.model is not None
    assert Model.from_bytes(finished.model).predict(np.zeros((2, 8))).shape == (2,)
    assert executor.running() == set()


def test_big_checkpoints_travel_by_queue_which_is_freed_afterwards(
    make_executor: Any, dask_scheduler: str
) -> None:
    dataset = blobs_npz(7)
    executor = make_executor(Loader(dataset))
    executor.submit(payload("q1", dataset[1], epochs=3, units=2048))
    events = collect(executor, concluded("q1"))
    sizes = [len(e.checkpoint or b"") for e in events if isinstance(e, Epoch)]
    assert len(sizes) == 3 and min(sizes) > INLINE_CHECKPOINT_BYTES
    assert isinstance(outcome(events, "q1"), Finished)
    with Client(dask_scheduler, set_as_default=False) as client:
        queues = client.run_on_scheduler(
            lambda dask_scheduler: sorted(dask_scheduler.extensions["queues"].queues)
        )
    assert not [name for name in queues if "q1" in name]


def test_close_leaves_no_progress_events_or_queues_on_the_scheduler(
    dask_scheduler: str, tmp_path: Any
) -> None:
    dataset = blobs_npz(3)
    settings = Settings(data_dir=tmp_path, executor="dask", dask_scheduler=dask_scheduler,
                        workers=2)
    executor = DaskExecutor(settings, load_dataset=Loader(dataset))
    executor.start()
    executor.submit(payload("done", dataset[1], epochs=3))
    assert isinstance(outcome(collect(executor, concluded("done")), "done"), Finished)
    executor.submit(payload("open", dataset[1], epochs=500))  # still running at close()
    collect(executor, lambda events: any(isinstance(e, Epoch) for e in events))
    topic = executor._topic
    executor.close()

    def leftovers(dask_scheduler: Any) -> tuple[list[str], list[str]]:
        kinds = [event.get("kind") for _, event in dask_scheduler.get_events(topic)]
        queues = sorted(dask_scheduler.extensions["queues"].queues)
        return kinds, [name for name in queues if "open" in name or "done" in name]

    with Client(dask_scheduler, set_as_default=False) as client:
        wait_until(lambda: not any(client.processing().values()), timeout=30,
                   message="the cancelled task to stop")
        kinds, queues = client.run_on_scheduler(leftovers)
    # Every event logged before close() is gone (there were ~10, up to 1,000 per topic, kept for
    # the scheduler's lifetime); only epochs the open task logged before it saw its cancel remain.
    assert "start" not in kinds and set(kinds) <= {"epoch"}
    assert queues == []


def test_dataset_used_by_three_jobs_reaches_the_cluster_once(make_executor: Any) -> None:
    dataset = blobs_npz(2)
    loader = Loader(dataset)
    executor = make_executor(loader)
    for job_id in ("d1", "d2"):
        executor.submit(payload(job_id, dataset[1], epochs=2))
    events = collect(executor, concluded("d1"))
    executor.submit(payload("d3", dataset[1], epochs=2))
    events += collect(executor, lambda ev: all(concluded(j)(events + ev) for j in ("d2", "d3")))
    assert all(isinstance(outcome(events, j), Finished) for j in ("d1", "d2", "d3"))
    assert loader.calls == [dataset[1]]
    assert executor.scatter_count == 1


def test_cancel_stops_a_running_job_within_an_epoch(make_executor: Any) -> None:
    dataset = blobs_npz(3, n_samples=3000)  # about 0.1 s per epoch
    executor = make_executor(Loader(dataset))
    executor.submit(payload("c1", dataset[1], epochs=500, batch_size=4))
    events = collect(executor, lambda ev: any(isinstance(e, Epoch) for e in ev))
    executor.cancel("c1")
    # Epoch events already on their way count as "before the cancel": read them all now.
    events += executor.poll(0.0)
    at_cancel = max(e.report["epoch"] for e in events if isinstance(e, Epoch))
    events += collect(executor, concluded("c1"), timeout=30)
    stopped = outcome(events, "c1")
    assert isinstance(stopped, Finished) and stopped.result["status"] == "cancelled"
    reports = [e.report for e in events if isinstance(e, Epoch)]
    fastest = min(report["metrics"]["seconds"] for report in reports)
    assert max(r["epoch"] for r in reports) - at_cancel <= epochs_allowed_after_cancel(fastest)
    assert max(r["epoch"] for r in reports) < 500


def test_killed_worker_job_resumes_from_its_checkpoint_and_matches_an_uninterrupted_run(
    make_executor: Any,
) -> None:
    dataset = blobs_npz(4, n_samples=3000)  # about 0.1 s per epoch
    executor = make_executor(Loader(dataset))
    executor.submit(payload("k1", dataset[1], epochs=20, batch_size=4))
    events = collect(executor, lambda ev: sum(isinstance(e, Epoch) for e in ev) >= 3)
    where = wait_until(lambda: executor.job_workers().get("k1"), timeout=10, message="worker pid")
    os.kill(where["pid"], signal.SIGKILL)
    events += collect(executor, concluded("k1"))
    assert isinstance(outcome(events, "k1"), Lost)
    last = max((e for e in events if isinstance(e, Epoch)), key=lambda e: e.report["epoch"])

    executor.submit(
        payload("k1", dataset[1], epochs=20, batch_size=4, attempt=2, resume_from=last.checkpoint)
    )
    resumed = collect(executor, concluded("k1"))
    resumed_epochs = [e.report["epoch"] for e in resumed if isinstance(e, Epoch)]
    assert resumed_epochs == list(range(last.report["epoch"] + 1, 21))
    assert executor.job_workers() == {}

    executor.submit(payload("k2", dataset[1], epochs=20, batch_size=4))
    reference = outcome(collect(executor, concluded("k2")), "k2")
    finished = outcome(resumed, "k1")
    assert isinstance(finished, Finished) and isinstance(reference, Finished)
    assert finished.model is not None and reference.model is not None
    weights, expected = Model.from_bytes(finished.model), Model.from_bytes(reference.model)
    probe = np.random.default_rng(0).normal(size=(16, 8))
    assert np.array_equal(weights.predict_proba(probe), expected.predict_proba(probe))


def test_a_later_attempt_stops_a_copy_left_running_by_a_dead_api(make_executor: Any) -> None:
    dataset = blobs_npz(5, n_samples=3000)
    first, second = make_executor(Loader(dataset)), make_executor(Loader(dataset))
    first.submit(payload("s1", dataset[1], epochs=500, batch_size=4))
    collect(first, lambda ev: any(isinstance(e, Epoch) for e in ev))
    second.submit(payload("s1", dataset[1], epochs=1, attempt=2))
    stale = outcome(collect(first, concluded("s1"), timeout=30), "s1")
    assert isinstance(stale, Finished) and stale.result["status"] == "cancelled"
    assert isinstance(outcome(collect(second, concluded("s1")), "s1"), Finished)


def test_a_malformed_progress_message_is_skipped_and_the_job_goes_on(make_executor: Any) -> None:
    dataset = blobs_npz(8)
    executor = make_executor(Loader(dataset))
    executor.submit(payload("m1", dataset[1], epochs=3))
    executor._on_event((0.0, {"kind": "epoch", "job_id": "m1", "attempt": 1}))  # no report
    events = collect(executor, concluded("m1"))
    assert [e.report["epoch"] for e in events if isinstance(e, Epoch)] == [1, 2, 3]
    assert isinstance(outcome(events, "m1"), Finished)


def test_an_exception_inside_the_task_fails_the_job_instead_of_losing_a_worker(
    make_executor: Any,
) -> None:
    dataset = blobs_npz(6)
    executor = make_executor(Loader(dataset))
    broken = payload("f1", dataset[1], epochs=1)
    executor.submit(JobPayload(**{**broken.__dict__, "spec": {**broken.spec, "epochs": 0}}))
    failed = outcome(collect(executor, concluded("f1")), "f1")
    assert isinstance(failed, Failed) and failed.reason == "error"
    assert "internal error" in failed.error


def test_unreachable_scheduler_means_no_capacity_not_a_crash(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        data_dir=tmp_path, executor="dask", dask_scheduler="tcp://127.0.0.1:9", workers=2
    )
    attempts: list[str] = []
    real_client = dask_executor_module.Client

    def counted_client(address: str, **kwargs: Any) -> Any:
        attempts.append(address)
        return real_client(address, **kwargs)

    monkeypatch.setattr(dask_executor_module, "Client", counted_client)
    executor = DaskExecutor(settings, load_dataset=Loader())
    executor.start()  # tries once, for at most a few seconds
    assert attempts == ["tcp://127.0.0.1:9"]
    assert executor.capacity() == 0
    assert not executor.is_healthy()
    assert executor.poll(0.0) == []
    assert len(attempts) == 1  # the next attempt waits RECONNECT_EVERY_SECONDS
    executor.close()


def test_executor_refuses_to_start_without_a_scheduler_address(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="FEEDFORWARD_DASK_SCHEDULER"):
        DaskExecutor(Settings(data_dir=tmp_path, executor="dask"), load_dataset=Loader())
