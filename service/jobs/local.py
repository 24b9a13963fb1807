"""The local executor: N worker processes on this machine, one job each at a time.

Workers are started with the "spawn" context (a fresh interpreter: no database connection, lock or
thread is inherited across fork) and talk to the supervisor over a duplex Pipe with the framed
protocol of protocol.py. A worker that does not stop when asked is SIGTERMed, then SIGKILLed; a
worker that dies is reported as Lost and replaced.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from typing import Any

from service.jobs.executor import (
    DatasetLoader,
    Epoch,
    Executor,
    ExecutorEvent,
    Failed,
    Finished,
    JobPayload,
    Lost,
)
from service.jobs.protocol import Message, ProtocolError, recv, send
from service.jobs.task import run_dtype
from service.jobs.worker_boot import worker_main

__all__ = ["LocalExecutor"]

logger = logging.getLogger(__name__)

COOPERATIVE_STOP_SECONDS = 3.0  # a worker checks its cancel flag every mini-batch; more is a hang
TERMINATE_TO_KILL_SECONDS = 10.0  # SIGTERM, then SIGKILL if the worker is still there
RESPAWN_DELAY_SECONDS = 1.0  # after a worker died before it was ready: don't spin

WorkerTarget = Callable[[Connection, Event, int, "int | None", int], None]


@dataclass
class _Worker:
    """One worker process and what the supervisor knows about it."""

    process: BaseProcess
    conn: Connection
    cancel: Event
    ready: bool = False
    info: dict[str, Any] = field(default_factory=dict)  # the worker's "ready" report
    job_id: str | None = None
    # (sha256, dtype) of the datasets the worker holds: those of its last job, unless that job
    # failed (its decode may be what failed, leaving the worker without them).
    cached: frozenset[tuple[str, str]] = frozenset()
    stop_requested_at: float | None = None
    terminated_at: float | None = None


class LocalExecutor(Executor):
    """Runs jobs in `workers` spawned processes, BLAS threads pinned, optional RLIMIT_AS."""

    def __init__(self, *, workers: int, blas_threads: int, memory_bytes: int | None,
                 load_dataset: DatasetLoader, worker_target: WorkerTarget = worker_main) -> None:
        self._size = workers
        self._blas_threads = blas_threads
        self._memory_bytes = memory_bytes
        self._load_dataset = load_dataset
        self._worker_target = worker_target  # a module-level function (spawn imports it by name)
        self._context = multiprocessing.get_context("spawn")
        self._slots: list[_Worker | None] = [None] * workers
        self._respawn_at: list[float] = [0.0] * workers
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self._wake_lock = threading.Lock()  # interrupt() must never write to a closed (reused) fd
        self._closed = False

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        for index in range(self._size):
            self._spawn_or_defer(index)

    def _spawn_or_defer(self, index: int) -> None:
        """Spawn worker `index`; if the OS refuses (EMFILE, EAGAIN, ENOMEM…), try again later.

        Raising instead would end start() (and the supervisor with it) or lose the events that
        poll() had already read from the other workers.
        """
        try:
            self._spawn(index)
        except Exception:
            logger.exception("could not start worker %d; trying again in %.0f s", index,
                             RESPAWN_DELAY_SECONDS)
            self._respawn_at[index] = time.monotonic() + RESPAWN_DELAY_SECONDS

    def _spawn(self, index: int) -> None:
        parent_conn, child_conn = self._context.Pipe(duplex=True)
        try:
            cancel = self._context.Event()
            process = self._context.Process(
                target=self._worker_target,
                args=(child_conn, cancel, self._blas_threads, self._memory_bytes, os.getpid()),
                name=f"feedforward-worker-{index}",
                daemon=True,
            )
            process.start()
        except BaseException:
            parent_conn.close()
            raise
        finally:
            child_conn.close()
        self._slots[index] = _Worker(process, parent_conn, cancel)

    def close(self) -> None:
        """Ask every worker to stop, give them a moment, then terminate and kill what is left."""
        self._closed = True
        workers = [worker for worker in self._slots if worker is not None]
        for worker in workers:
            worker.cancel.set()
            _quietly(lambda w=worker: send(w.conn, Message("stop")))
        deadline = time.monotonic() + 2.0
        for worker in workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
        for worker in workers:
            _stop_process(worker.process)
            worker.conn.close()
        self._slots = [None] * self._size
        with self._wake_lock:
            for fd in (self._wake_read, self._wake_write):
                _quietly(lambda fd=fd: os.close(fd))
            self._wake_read = self._wake_write = -1

    # --- the interface -------------------------------------------------------------------------

    def capacity(self) -> int:
        return sum(1 for worker in self._slots if worker is not None and worker.job_id is None)

    def running(self) -> set[str]:
        return {w.job_id for w in self._slots if w is not None and w.job_id is not None}

    def is_healthy(self) -> bool:
        return not self._closed and all(
            worker is not None and worker.process.is_alive() for worker in self._slots
        )

    def worker_reports(self) -> list[dict[str, Any]]:
        """The "ready" report of each worker that is up: pid, BLAS threads in use."""
        return [dict(w.info) for w in self._slots if w is not None and w.ready]

    def worker_pids(self) -> list[int]:
        """Pids of the live worker processes (for operations and fault tests)."""
        return [w.process.pid for w in self._slots if w is not None and w.process.pid is not None]

    def submit(self, job: JobPayload) -> None:
        dtype = run_dtype(job.spec)
        needed = frozenset((sha, dtype) for sha in job.datasets.values())
        free = [w for w in self._slots if w is not None and w.job_id is None]
        # A worker that holds the data skips sending and decoding it again: for a 60,000 × 784
        # dataset that was 0.3–0.5 s of a 2.5 s job whenever the job landed on the other worker.
        worker = max(free, key=lambda w: len(needed & w.cached))
        blobs = {sha: self._load_dataset(sha) for sha, _ in sorted(needed - worker.cached)}
        if job.resume_from is not None:
            blobs["checkpoint"] = job.resume_from
        worker.cancel.clear()
        worker.job_id, worker.stop_requested_at = job.job_id, None
        worker.cached = needed
        try:
            send(worker.conn, Message("run", job.header(), blobs))
        except (BrokenPipeError, ConnectionResetError):  # its sentinel reports the job as Lost
            logger.warning("worker %s died while receiving job %s", worker.process.pid, job.job_id)
        except BaseException:  # not sent: the caller requeues the job, the worker stays free
            worker.job_id, worker.cached = None, frozenset()
            raise

    def cancel(self, job_id: str) -> None:
        for worker in self._slots:
            if worker is not None and worker.job_id == job_id and worker.stop_requested_at is None:
                worker.cancel.set()
                worker.stop_requested_at = time.monotonic()

    def interrupt(self) -> None:
        with self._wake_lock:
            if self._wake_write >= 0:
                _quietly(lambda: os.write(self._wake_write, b"x"))

    def poll(self, timeout: float) -> list[ExecutorEvent]:
        self._escalate_stops()
        self._respawn_due()
        workers = [w for w in self._slots if w is not None]
        handles: list[Any] = [self._wake_read]
        handles += [w.conn for w in workers] + [w.process.sentinel for w in workers]
        ready = set(wait(handles, timeout))
        if self._wake_read in ready:
            _quietly(lambda: os.read(self._wake_read, 4096))
        events: list[ExecutorEvent] = []
        for index, worker in enumerate(self._slots):
            if worker is None:
                continue
            if worker.conn in ready:
                events += self._drain(worker)
            if worker.process.sentinel in ready or not worker.process.is_alive():
                events += self._bury(index, worker)
        return events

    # --- messages from workers -------------------------------------------------------------------

    def _drain(self, worker: _Worker) -> list[ExecutorEvent]:
        """Read every message waiting on the worker's pipe (a dead worker's pipe reads EOF)."""
        events: list[ExecutorEvent] = []
        try:
            while worker.conn.poll(0):
                event = self._to_event(worker, recv(worker.conn))
                if event is not None:
                    events.append(event)
        except (EOFError, OSError, ProtocolError):
            worker.process.join(1.0)  # the sentinel fires next; _bury reports the job as Lost
        return events

    def _to_event(self, worker: _Worker, message: Message) -> ExecutorEvent | None:
        header = message.header
        if message.kind == "ready":
            worker.ready, worker.info = True, header
            return None
        job_id = worker.job_id
        if job_id is None or header.get("job_id") != job_id:
            return None  # a late message about a job this worker no longer runs
        if message.kind == "epoch":
            return Epoch(job_id, header["report"], message.blobs.get("checkpoint"))
        worker.job_id = None
        if message.kind == "finished":
            return Finished(job_id, header["result"], message.blobs.get("model"))
        worker.cached = frozenset()  # e.g. a MemoryError decoding the datasets: resend them next
        return Failed(job_id, header.get("reason", "error"), header.get("error", "the job failed"))

    # --- dead, hung and replaced workers --------------------------------------------------------

    def _bury(self, index: int, worker: _Worker) -> list[ExecutorEvent]:
        worker.process.join(0.1)
        if worker.process.is_alive():
            return []
        exitcode = worker.process.exitcode
        worker.conn.close()
        self._slots[index] = None
        early = not worker.ready
        self._respawn_at[index] = time.monotonic() + (RESPAWN_DELAY_SECONDS if early else 0.0)
        if not self._closed:
            self._respawn_due()
        if worker.job_id is None:
            return []
        detail = f"worker process {worker.process.pid} exited with code {exitcode}"
        return [Lost(worker.job_id, detail)]

    def _respawn_due(self) -> None:
        now = time.monotonic()
        for index, worker in enumerate(self._slots):
            if worker is None and not self._closed and now >= self._respawn_at[index]:
                self._spawn_or_defer(index)

    def _escalate_stops(self) -> None:
        """Cooperative stop first; SIGTERM a worker ignoring it, SIGKILL one ignoring that."""
        now = time.monotonic()
        for worker in self._slots:
            if worker is None or worker.stop_requested_at is None or worker.job_id is None:
                continue
            if worker.terminated_at is None:
                if now - worker.stop_requested_at > COOPERATIVE_STOP_SECONDS:
                    logger.warning("worker %s ignores its stop flag; SIGTERM", worker.process.pid)
                    worker.process.terminate()
                    worker.terminated_at = now
            elif now - worker.terminated_at > TERMINATE_TO_KILL_SECONDS:
                logger.warning("worker %s survived SIGTERM; SIGKILL", worker.process.pid)
                worker.process.kill()


def _stop_process(process: BaseProcess) -> None:
    if process.is_alive():
        process.terminate()
        process.join(TERMINATE_TO_KILL_SECONDS)
    if process.is_alive():
        process.kill()
        process.join(1.0)


def _quietly(action: Any) -> None:
    try:
        action()
    except (OSError, ValueError):
        pass
