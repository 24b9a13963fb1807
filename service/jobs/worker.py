"""The loop of a local worker process: receive a job, run it, send its reports back.

Workers never touch the database. They keep the datasets of their last job (by sha256, cast to the
job's dtype), so a job on the same data in the same dtype does not resend or convert them.
Cancellation is a shared Event checked between mini-batches; a worker whose parent died stops at
the next mini-batch and exits.
"""

from __future__ import annotations

import logging
import os
import resource
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from service.jobs.protocol import Message, arrays_from_npz, recv, send
from service.jobs.task import in_run_dtype, job_arrays, run_dtype

__all__ = ["serve"]

logger = logging.getLogger(__name__)

RunJob = Callable[
    [dict[str, Any], dict[str, np.ndarray], Callable[[dict[str, Any]], None], Callable[[], bool]],
    dict[str, Any],
]


class _SupervisorGone(BaseException):
    """The pipe to the supervisor broke: unwind the training loop and exit (not an Exception)."""


class DatasetCache:
    """The arrays of the datasets the last job used, keyed by (sha256, dtype) and in that dtype."""

    def __init__(self) -> None:
        self._arrays: dict[tuple[str, str], dict[str, np.ndarray]] = {}

    def arrays_for(
        self, datasets: dict[str, str], blobs: dict[str, bytes], dtype: str
    ) -> dict[str, np.ndarray]:
        """X, y (and X_val, y_val) for this job; blobs hold npz bytes of the datasets not cached
        in `dtype` (the supervisor's record of what this worker holds uses the same keys), and
        each is popped from `blobs` as it is decoded: bytes, decoded and cast arrays of one
        dataset never all exist at once.

        The datasets this job does not use are dropped before the new ones are decoded, so memory
        peaks at the new job's data, not the old job's plus the new job's. When decoding fails,
        the cache holds less than the job's datasets (the supervisor then resends them all).
        """
        keys = {(sha, dtype) for sha in datasets.values()}
        self._arrays = {key: arrays for key, arrays in self._arrays.items() if key in keys}
        for key in sorted(keys - self._arrays.keys()):
            decoded = arrays_from_npz(blobs.pop(key[0]), ("X", "y"))  # the bytes go before the cast
            self._arrays[key] = in_run_dtype(decoded, dtype)
            del decoded
        return job_arrays(datasets, {sha: self._arrays[sha, dtype] for sha, _ in keys})


def _send(conn: Connection, message: Message) -> None:
    try:
        send(conn, message)
    except (BrokenPipeError, ConnectionResetError, EOFError) as exc:
        raise _SupervisorGone from exc


def _epoch_message(job_id: str, report: dict[str, Any]) -> Message:
    checkpoint = report.pop("checkpoint", None)
    blobs = {"checkpoint": checkpoint} if checkpoint is not None else {}
    return Message("epoch", {"job_id": job_id, "report": report}, blobs)


def _finished_message(job_id: str, result: dict[str, Any]) -> Message:
    model = result.pop("model", None)
    blobs = {"model": model} if model is not None else {}
    return Message("finished", {"job_id": job_id, "result": result}, blobs)


def _run(conn: Connection, message: Message, cache: DatasetCache, cancel: Event,
         parent_pid: int, run: RunJob) -> Message:
    header = message.header
    job_id = header["job_id"]
    try:
        payload = {**header, "resume_from": message.blobs.get("checkpoint")}
        arrays = cache.arrays_for(header["datasets"], message.blobs, run_dtype(header["spec"]))
        message.blobs.clear()  # a dataset this worker already held, if sent anyway: not kept
        result = run(
            payload,
            arrays,
            lambda report: _send(conn, _epoch_message(job_id, report)),
            lambda: cancel.is_set() or os.getppid() != parent_pid,
        )
    except MemoryError:
        error = "the job ran out of memory in its worker; use a smaller batch_size or network"
        return Message("failed", {"job_id": job_id, "reason": "resource_exhausted", "error": error})
    except Exception as exc:  # a bug, not bad input: keep the worker alive, log the traceback
        logger.exception("job %s failed in its worker", job_id)
        error = f"training failed with an internal error ({type(exc).__name__}); see the server log"
        return Message("failed", {"job_id": job_id, "reason": "error", "error": error})
    return _finished_message(job_id, result)


def _readiness(blas_threads: int, numpy_was_loaded: bool) -> dict[str, Any]:
    """What the worker reports when it is up: its pid, the BLAS threads it really uses and its
    address-space cap (RLIMIT_AS in bytes, None when unlimited)."""
    blas = [pool["num_threads"] for pool in threadpool_info() if pool.get("user_api") == "blas"]
    memory_limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    return {"pid": os.getpid(), "blas_threads_wanted": blas_threads, "blas_threads": blas,
            "numpy_preloaded": numpy_was_loaded,
            "memory_limit_bytes": None if memory_limit == resource.RLIM_INFINITY else memory_limit}


def serve(conn: Connection, cancel: Event, *, parent_pid: int, blas_threads: int,
          numpy_was_loaded: bool, run: RunJob) -> None:
    """Announce readiness, then run one job per "run" message until "stop" or end of pipe.

    `run` is task.run_job (tests pass a stand-in with the same signature).
    """
    limits = threadpool_limits(blas_threads) if numpy_was_loaded else None
    cache = DatasetCache()
    try:
        _send(conn, Message("ready", _readiness(blas_threads, numpy_was_loaded)))
        while True:
            message = recv(conn)
            if message.kind != "run":
                break
            _send(conn, _run(conn, message, cache, cancel, parent_pid, run))
    except (EOFError, _SupervisorGone):
        pass
    finally:
        if limits is not None:
            limits.restore_original_limits()
