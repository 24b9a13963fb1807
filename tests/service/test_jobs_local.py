"""The local executor on its own: worker processes, BLAS pinning, dataset caching, wake-ups."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest

from service.jobs.executor import Epoch, ExecutorEvent, Finished, JobPayload
from service.jobs.local import LocalExecutor
from service.jobs.store import training_fields
from service.jobs.worker_boot import worker_main
from tests.service.jobs_fakes import fake_worker_main, job_spec, wait_for


def _dataset_bytes() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, X=np.zeros((12, 3)), y=np.arange(12, dtype=np.int64) % 2)
    return buffer.getvalue()


class _CountingLoader:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, sha256: str) -> bytes:
        self.calls.append(sha256)
        return _dataset_bytes()


def _payload(job_id: str, sha: str = "sha-a", behaviour: str = "normal") -> JobPayload:
    return JobPayload(job_id=job_id, attempt=1, spec=training_fields(job_spec("d", epochs=2)),
                      task="classification", n_classes=2, validation_split=None,
                      datasets={"train": sha}, metadata={"target_name": behaviour})


def _poll_until_finished(executor: LocalExecutor, job_id: str) -> list[ExecutorEvent]:
    events: list[ExecutorEvent] = []
    deadline = time.monotonic() + 30.0
    while not any(isinstance(e, Finished) and e.job_id == job_id for e in events):
        assert time.monotonic() < deadline, events
        events += executor.poll(0.1)
    return events


def _ready_reports(executor: LocalExecutor, count: int = 1) -> list[dict]:
    """Poll (which reads the workers' "ready" messages) until `count` workers are up."""
    def ready() -> list[dict]:
        executor.poll(0.05)
        reports = executor.worker_reports()
        return reports if len(reports) >= count else []

    return wait_for(ready, timeout=30.0)


@pytest.fixture
def executor_factory():
    made: list[LocalExecutor] = []

    def make(*, workers: int = 1, loader=None, target=fake_worker_main, blas_threads: int = 1,
             memory_bytes: int | None = None):
        executor = LocalExecutor(workers=workers, blas_threads=blas_threads,
                                 memory_bytes=memory_bytes,
                                 load_dataset=loader or _CountingLoader(), worker_target=target)
        executor.start()
        made.append(executor)
        return executor

    yield make
    for executor in made:
        executor.close()


def test_a_job_streams_its_epochs_then_its_outcome(executor_factory):
    executor = executor_factory()
    executor.submit(_payload("j1"))
    assert executor.running() == {"j1"} and executor.capacity() == 0

    events = _poll_until_finished(executor, "j1")

    epochs = [e for e in events if isinstance(e, Epoch)]
    assert [e.report["epoch"] for e in epochs] == [1, 2]
    assert all(e.checkpoint for e in epochs)
    assert executor.running() == set() and executor.capacity() == 1


def test_a_worker_keeps_the_last_jobs_dataset_and_is_not_sent_it_again(executor_factory):
    loader = _CountingLoader()
    executor = executor_factory(loader=loader)
    for job_id in ("j1", "j2"):
        executor.submit(_payload(job_id, sha="same"))
        _poll_until_finished(executor, job_id)
    executor.submit(_payload("j3", sha="other"))
    _poll_until_finished(executor, "j3")
    assert loader.calls == ["same", "other"]


def test_interrupt_wakes_a_blocked_poll_from_another_thread(executor_factory):
    executor = executor_factory()
    _ready_reports(executor)
    threading.Timer(0.1, executor.interrupt).start()
    started = time.monotonic()
    executor.poll(10.0)
    assert time.monotonic() - started < 5.0


def test_close_stops_every_worker_process(executor_factory):
    executor = executor_factory(workers=2)
    _ready_reports(executor, 2)
    processes = [w.process for w in executor._slots if w is not None]
    executor.close()
    assert all(not process.is_alive() for process in processes)


@pytest.mark.parametrize("threads", [1, 2])
def test_real_workers_pin_blas_threads_before_numpy_is_imported(executor_factory, threads):
    executor = executor_factory(target=worker_main, blas_threads=threads)
    report = _ready_reports(executor)[0]
    assert report["numpy_preloaded"] is False
    assert report["blas_threads"] and set(report["blas_threads"]) == {threads}


def test_a_real_worker_starts_under_a_one_gib_address_space_cap(executor_factory):
    executor = executor_factory(target=worker_main, memory_bytes=1024**3)
    assert set(_ready_reports(executor)[0]["blas_threads"]) == {1}
