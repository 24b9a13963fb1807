"""The function a Dask worker runs for one job attempt: `task.run_job`, wired to the cluster.

Runs on worker machines, which have the package but no database: it imports numpy, the engine (via
task.py) and distributed, nothing else of the service. Plain data comes in (the job header, the
dataset npz bytes the executor scattered, the resume checkpoint) and goes out:

- each epoch: the report (metrics, diagnostics, findings) is logged on the API's topic with
  `Worker.log_event`, with the checkpoint inside when it is small. The scheduler keeps the last
  ~1000 events of every topic in memory, so a big checkpoint (megabytes of weights) goes to the
  attempt's `distributed.Queue` instead, whose items are dropped as soon as the API takes them.
  The put is acknowledged before the event leaves: when the API sees epoch N, checkpoint N waits;
- the outcome is the task's return value, which the API gathers straight from the worker.

Cancellation is cooperative: `should_stop` reads the attempt's `distributed.Event`, at most every
STOP_CHECK_SECONDS (each read is a round trip to the scheduler; mini-batches are far shorter).
If the worker dies, the scheduler reruns the task elsewhere with the arguments of the first run,
i.e. with a stale checkpoint. The "started" Event makes such a rerun return at once instead, and
the API resubmits the job as a new attempt from its latest committed checkpoint.
"""
# distributed's public API is only partly annotated.
# mypy: disallow-untyped-calls=False

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
from distributed import Event, Queue, get_worker
from threadpoolctl import threadpool_limits

from service.jobs.protocol import arrays_from_npz
from service.jobs.task import in_run_dtype, job_arrays, run_dtype, run_job

__all__ = ["INLINE_CHECKPOINT_BYTES", "STOP_CHECK_SECONDS", "Channels", "run_attempt"]

logger = logging.getLogger(__name__)

STOP_CHECK_SECONDS = 0.2
# Checkpoints up to this size ride in the epoch event itself (no extra round trips); the scheduler
# keeps at most ~1000 events per topic, so that bounds what it holds for us at ~64 MiB.
INLINE_CHECKPOINT_BYTES = 64 * 1024
DECODED_DATASETS_KEPT = 2  # per worker process: the arrays of the last datasets, by (sha256, dtype)


@dataclass(frozen=True)
class Channels:
    """Names of the cluster-side objects that belong to one attempt of one job."""

    topic: str  # the API client's progress topic
    cancel: str  # Event: set by the API to stop the attempt
    started: str  # Event: set when the attempt starts, so that a rerun can tell
    checkpoints: str  # Queue: checkpoint bytes, one per reported epoch

    @classmethod
    def for_attempt(cls, topic: str, job_id: str, attempt: int) -> Channels:
        suffix = f"{job_id}-{attempt}"
        return cls(
            topic,
            f"feedforward-cancel-{suffix}",
            f"feedforward-started-{suffix}",
            f"feedforward-checkpoints-{suffix}",
        )


class _DecodedDatasets:
    """npz bytes → arrays in a run's dtype, decoded once per worker process, dataset and dtype
    (jobs may share a worker)."""

    def __init__(self) -> None:
        self._arrays: OrderedDict[tuple[str, str], dict[str, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sha256: str, data: bytes, dtype: str) -> dict[str, np.ndarray]:
        key = (sha256, dtype)
        with self._lock:
            if key not in self._arrays:
                self._arrays[key] = in_run_dtype(arrays_from_npz(data, ("X", "y")), dtype)
                while len(self._arrays) > DECODED_DATASETS_KEPT:
                    self._arrays.popitem(last=False)
            self._arrays.move_to_end(key)
            return self._arrays[key]


_DECODED = _DecodedDatasets()


def _job_arrays(header: dict[str, Any], blobs: dict[str, bytes]) -> dict[str, np.ndarray]:
    """X, y (and X_val, y_val) from the role → sha256 map and the scattered bytes by sha256."""
    datasets, dtype = header["datasets"], run_dtype(header["spec"])
    decoded = {sha: _DECODED.get(sha, blobs[sha], dtype) for sha in set(datasets.values())}
    return job_arrays(datasets, decoded)


class _StopFlag:
    """should_stop for run_job: the cancel Event, read at most every STOP_CHECK_SECONDS."""

    def __init__(self, event: Event) -> None:
        self._event = event
        self._stopped = False
        self._next_check = 0.0

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self._stopped and now >= self._next_check:
            self._next_check = now + STOP_CHECK_SECONDS
            self._stopped = self.read_now()
        return self._stopped

    def read_now(self) -> bool:
        try:
            self._stopped = self._stopped or bool(self._event.is_set())
        except Exception:  # scheduler unreachable: keep training; the API resubmits if it must
            logger.warning("could not read the cancel flag %s", self._event.name, exc_info=True)
        return self._stopped


class _Reporter:
    """run_job's `report` callback: the epoch's report (and a small checkpoint) to the API's topic;
    a big checkpoint to the attempt's queue first."""

    def __init__(self, header: dict[str, Any], channels: Channels, stop: _StopFlag) -> None:
        self._ids = {"job_id": header["job_id"], "attempt": header["attempt"]}
        self._channels = channels
        self._queue: Queue | None = None  # created on the first big checkpoint
        self._stop = stop

    def __call__(self, report: dict[str, Any]) -> None:
        checkpoint = report.pop("checkpoint", None)
        message = {"kind": "epoch", **self._ids, "report": report, "checkpoint": None}
        if checkpoint is not None and len(checkpoint) <= INLINE_CHECKPOINT_BYTES:
            message |= {"checkpoint": "inline", "checkpoint_bytes": checkpoint}
        elif checkpoint is not None and not self._stop.read_now():
            # (A stopped attempt's checkpoint would wait for a reader that never comes.)
            self._queue = self._queue or Queue(self._channels.checkpoints)
            self._queue.put(checkpoint)
            message["checkpoint"] = "queued"
        get_worker().log_event(self._channels.topic, message)

    def close(self) -> None:
        if self._queue is not None:
            self._queue.close()


def _blas_limits(blas_threads: int | None) -> AbstractContextManager[Any]:
    return threadpool_limits(blas_threads) if blas_threads else nullcontext()


def _announce_start(header: dict[str, Any], channels: Channels) -> bool:
    """Mark the attempt started and tell the API where it runs; False when this is a rerun."""
    started = Event(channels.started)
    if started.is_set():
        return False
    started.set()
    worker = get_worker()
    worker.log_event(
        channels.topic,
        {
            "kind": "start",
            "job_id": header["job_id"],
            "attempt": header["attempt"],
            "pid": os.getpid(),
            "worker": worker.address,
        },
    )
    return True


def run_attempt(
    header: dict[str, Any],
    resume_from: bytes | None,
    blobs: dict[str, bytes],
    channels: Channels,
    blas_threads: int | None,
) -> dict[str, Any]:
    """Run one attempt; returns {"outcome": "finished", "result", "model"} | {"outcome": "failed",
    "reason", "error"} | {"outcome": "rerun"}. Never raises: an exception out of the task would
    read to the API as a lost worker."""
    try:
        if not _announce_start(header, channels):
            return {"outcome": "rerun"}
        stop = _StopFlag(Event(channels.cancel))
        reporter = _Reporter(header, channels, stop)
        try:
            arrays = _job_arrays(header, blobs)
            with _blas_limits(blas_threads):
                result = run_job({**header, "resume_from": resume_from}, arrays, reporter, stop)
        finally:
            reporter.close()
    except MemoryError:
        error = "the job ran out of memory on its Dask worker; use a smaller batch_size or network"
        return {"outcome": "failed", "reason": "resource_exhausted", "error": error}
    except Exception as exc:  # a bug, not the user's input: the worker log has the traceback
        logger.exception("job %s failed on its Dask worker", header.get("job_id"))
        error = f"training failed with an internal error ({type(exc).__name__}); see the worker log"
        return {"outcome": "failed", "reason": "error", "error": error}
    model = result.pop("model", None)
    return {"outcome": "finished", "result": result, "model": model}
