"""The local executor on its own: worker processes, BLAS pinning, dataset caching, wake-ups."""

from __future__ import annotations

import io
import json
import resource
import threading

import numpy as np
import pytest

from service.jobs.executor import Epoch, ExecutorEvent, Failed, Finished, JobPayload
from service.jobs.local import LocalExecutor
from service.jobs.store import training_fields
from service.jobs.worker import DatasetCache
from service.jobs.worker_boot import worker_main
from tests.service.jobs_fakes import (
    collect,
    concluded,
    fake_worker_main,
    job_spec,
    outcome,
    wait_for,
)


def _dataset_bytes() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, X=np.zeros((12, 3)), y=np.arange(12, dtype=np.int64) % 2)
    return buffer.getvalue()


class _CountingLoader:
    """Dataset bytes for any sha; the first load of a sha in `corrupt_once` gives bytes that are
    not an npz (the worker's decode fails, as it would with a MemoryError under its cap)."""

    def __init__(self, corrupt_once: tuple[str, ...] = ()) -> None:
        self.calls: list[str] = []
        self._corrupt = set(corrupt_once)

    def __call__(self, sha256: str) -> bytes:
        self.calls.append(sha256)
        if sha256 in self._corrupt:
            self._corrupt.discard(sha256)
            return b"not an npz"
        return _dataset_bytes()


def _payload(job_id: str, sha: str = "sha-a", behaviour: str = "normal",
             dtype: str = "float32") -> JobPayload:
    spec = training_fields(job_spec("d", epochs=2, dtype=dtype))
    return JobPayload(job_id=job_id, attempt=1, spec=spec,
                      task="classification", n_classes=2, validation_split=None,
                      datasets={"train": sha}, metadata={"target_name": behaviour})


def _poll_until_concluded(executor: LocalExecutor, job_id: str) -> list[ExecutorEvent]:
    """The events up to and including the job's outcome (Finished or Failed)."""
    return collect(executor, concluded(job_id), timeout=30.0)


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


def test_a_job_streams_its_epochs_then_itsoutcome(executor_factory):
    executor = executor_factory()
    executor.submit(_payload("j1"))
    assert executor.running() == {"j1"} and executor.capacity() == 0

    events = _poll_until_concluded(executor, "j1")

    assert isinstance(outcome(events, "j1"), Finished)
    epochs = [e for e in events if isinstance(e, Epoch)]
    assert [e.report["epoch"] for e in epochs] == [1, 2]
    assert all(e.checkpoint for e in epochs)
    assert executor.running() == set() and executor.capacity() == 1


def test_a_worker_keeps_the_last_jobs_dataset_and_is_not_sent_it_again(executor_factory):
    loader = _CountingLoader()
    executor = executor_factory(loader=loader)
    for job_id, sha in (("j1", "same"), ("j2", "same"), ("j3", "other")):
        executor.submit(_payload(job_id, sha=sha))
        assert isinstance(outcome(_poll_until_concluded(executor, job_id), job_id), Finished)
    assert loader.calls == ["same", "other"]


def test_a_job_goes_to_the_free_worker_that_holds_its_dataset(executor_factory):
    loader = _CountingLoader()
    executor = executor_factory(workers=2, loader=loader)
    _ready_reports(executor, count=2)
    executor.submit(_payload("j1", sha="a"))
    executor.submit(_payload("j2", sha="b"))  # on the other worker, while j1 runs
    events = collect(  # one poll loop for both: either may finish first
        executor,
        lambda gathered: {e.job_id for e in gathered if isinstance(e, Finished)} == {"j1", "j2"},
        timeout=30.0,
    )
    assert not [e for e in events if isinstance(e, Failed)]
    for job_id, sha in (("j3", "b"), ("j4", "a"), ("j5", "b")):  # both workers free each time
        executor.submit(_payload(job_id, sha=sha))
        assert isinstance(outcome(_poll_until_concluded(executor, job_id), job_id), Finished)
    assert loader.calls == ["a", "b"]  # never sent again


def test_after_a_failed_decode_the_next_job_on_that_dataset_is_sent_it_again(executor_factory):
    loader = _CountingLoader(corrupt_once=("b",))
    executor = executor_factory(loader=loader)
    executor.submit(_payload("j1", sha="a"))
    assert isinstance(outcome(_poll_until_concluded(executor, "j1"), "j1"), Finished)

    executor.submit(_payload("j2", sha="b"))  # decoding b fails in the worker
    failed = outcome(_poll_until_concluded(executor, "j2"), "j2")
    assert isinstance(failed, Failed) and failed.reason == "error"

    executor.submit(_payload("j3", sha="b"))  # the worker does not hold b: it must get it again
    finished = outcome(_poll_until_concluded(executor, "j3"), "j3")
    assert isinstance(finished, Finished), finished
    assert finished.result["status"] == "succeeded"
    assert loader.calls == ["a", "b", "b"]


def test_the_dataset_cache_drops_datasets_the_job_does_not_use_before_decoding_new_ones():
    cache = DatasetCache()
    data = _dataset_bytes()
    cache.arrays_for({"train": "a", "validation": "v"}, {"a": data, "v": data}, "float32")
    arrays = cache.arrays_for({"train": "v"}, {}, "float32")  # v is held: nothing to send
    assert set(arrays) == {"X", "y"} and set(cache._arrays) == {("v", "float32")}

    with pytest.raises(ValueError):
        cache.arrays_for({"train": "b"}, {"b": b"not an npz"}, "float32")
    assert cache._arrays == {}  # v went before b was decoded, and b failed

    arrays = cache.arrays_for({"train": "b", "validation": "c"}, {"b": data, "c": data},
                              "float32")
    assert set(arrays) == {"X", "y", "X_val", "y_val"}
    assert set(cache._arrays) == {("b", "float32"), ("c", "float32")}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_dataset_cache_holds_inputs_in_the_runs_dtype_so_training_copies_nothing(dtype):
    from engine.spec import TrainingSpec
    from engine.training_data import prepare_data

    cache = DatasetCache()
    arrays = cache.arrays_for({"train": "a"}, {"a": _dataset_bytes()}, dtype)
    assert arrays["X"].dtype == np.dtype(dtype) and arrays["y"].dtype == np.int64
    assert cache.arrays_for({"train": "a"}, {}, dtype)["X"] is arrays["X"]  # kept, not re-cast

    spec = TrainingSpec.model_validate(training_fields(job_spec("d", dtype=dtype)))
    data = prepare_data(spec, arrays["X"], arrays["y"], task="classification", n_classes=2,
                        validation=None, split_rng=np.random.default_rng(0))
    assert data.X is arrays["X"]


def test_a_job_in_another_dtype_is_sent_the_dataset_again(executor_factory):
    loader = _CountingLoader()
    executor = executor_factory(loader=loader)
    for job_id, dtype in (("j1", "float32"), ("j2", "float64"), ("j3", "float64")):
        executor.submit(_payload(job_id, sha="a", dtype=dtype))
        finished = outcome(_poll_until_concluded(executor, job_id), job_id)
        assert isinstance(finished, Finished) and finished.model is not None
        assert json.loads(finished.model)["X_dtype"] == dtype  # what the job really trained on
    # float64 cannot be recovered from the float32 copy the worker kept
    assert loader.calls == ["a", "a"]


@pytest.mark.timeout(60)  # a poll that nothing wakes fails here, not after an hour
def test_interrupt_wakes_a_blocked_poll_from_another_thread(executor_factory):
    executor = executor_factory()
    _ready_reports(executor)
    threading.Timer(0.1, executor.interrupt).start()
    assert executor.poll(3600.0) == []  # returns at all only because interrupt woke it


def test_a_worker_that_cannot_be_respawned_loses_no_event_and_is_retried(
    executor_factory, monkeypatch
):
    executor = executor_factory(workers=2)
    _ready_reports(executor, 2)
    spawn = executor._spawn

    def refused(index: int) -> None:
        raise OSError(24, "Too many open files")  # EMFILE, as under a tight ulimit

    monkeypatch.setattr(executor, "_spawn", refused)
    executor.submit(_payload("j1"))
    idle = next(w for w in executor._slots if w is not None and w.job_id is None)
    idle.process.kill()
    events = _poll_until_concluded(executor, "j1")  # poll raised (and dropped j1's events) before
    assert isinstance(outcome(events, "j1"), Finished)
    assert [e.report["epoch"] for e in events if isinstance(e, Epoch)] == [1, 2]
    assert wait_for(lambda: len(executor.worker_pids()) == 1, timeout=10.0)
    assert not executor.is_healthy()  # /readyz tells the truth meanwhile
    monkeypatch.setattr(executor, "_spawn", spawn)  # the OS allows it again: the slot refills

    def refilled() -> bool:
        executor.poll(0.05)
        return len(executor.worker_pids()) == 2

    assert wait_for(refilled, timeout=30.0)


def test_a_job_that_could_not_be_sent_leaves_its_worker_free(executor_factory, monkeypatch):
    executor = executor_factory()
    _ready_reports(executor)

    def unsendable(*args, **kwargs) -> None:
        raise ValueError("header not encodable")

    monkeypatch.setattr("service.jobs.local.send", unsendable)
    with pytest.raises(ValueError):
        executor.submit(_payload("j1"))
    assert executor.running() == set() and executor.capacity() == 1  # was stuck on j1 for good
    monkeypatch.undo()
    executor.submit(_payload("j2"))
    assert isinstance(outcome(_poll_until_concluded(executor, "j2"), "j2"), Finished)


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
    report = _ready_reports(executor)[0]
    assert set(report["blas_threads"]) == {1}
    assert report["memory_limit_bytes"] == 1024**3


def test_a_real_worker_without_a_cap_keeps_the_address_space_limit_it_inherited(executor_factory):
    executor = executor_factory(target=worker_main)
    inherited = resource.getrlimit(resource.RLIMIT_AS)[0]
    expected = None if inherited == resource.RLIM_INFINITY else inherited
    assert _ready_reports(executor)[0]["memory_limit_bytes"] == expected
