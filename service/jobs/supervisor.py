"""The job supervisor: one thread in the API process that owns every job-state write.

Loop: wait for executor events (epochs, outcomes, lost workers) → commit each as it arrives; every
`poll_seconds` (or at once after `wake()`) pass cancel requests to the executor and claim queued
jobs while it has room; every `heartbeat_seconds` renew our leases and settle jobs whose lease
expired (their supervisor is gone): resumed from their checkpoint while attempts remain, else failed
`worker_lost`. Training itself never runs here — only bookkeeping, so the API stays responsive.

At start-up a running job leased by a process of this host that no longer exists (e.g. the server
was killed) is settled at once instead of waiting for its lease (see instance.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.exc import NoResultFound
from sqlalchemy.orm import Session

from service.db import Database
from service.jobs import store
from service.jobs.executor import (
    DatasetLoader,
    Epoch,
    Executor,
    ExecutorEvent,
    Failed,
    Finished,
    Lost,
)
from service.jobs.instance import instance_is_dead, new_instance_id
from service.jobs.local import LocalExecutor
from service.models import utcnow
from service.settings import Settings

__all__ = ["JobSupervisor", "make_executor"]

logger = logging.getLogger(__name__)

ExecutorFactory = Callable[[Settings, DatasetLoader], Executor] | None

HEALTHY_LOOP_SECONDS = 30.0  # a loop iteration older than this means the thread is stuck
FINISH_RETRIES = 5  # an outcome that failed to commit (database briefly unavailable) is retried


def make_executor(settings: Settings, load_dataset: DatasetLoader) -> Executor:
    """The backend named by settings.executor."""
    if settings.executor == "dask":
        from service.jobs.dask import DaskExecutor  # optional extra: only imported when configured

        return DaskExecutor(settings, load_dataset=load_dataset)
    return LocalExecutor(
        workers=settings.workers, blas_threads=settings.worker_blas_threads,
        memory_bytes=settings.worker_memory_bytes, load_dataset=load_dataset,
    )


class JobSupervisor:
    """Claims queued jobs, runs them on an executor, commits their progress and outcomes."""

    def __init__(
        self, settings: Settings, database: Database, executor_factory: ExecutorFactory = None
    ) -> None:
        """`executor_factory(settings, load_dataset)` builds the backend (default: settings')."""
        self.settings = settings
        self.database = database
        self.instance_id = new_instance_id()
        self.executor = (executor_factory or make_executor)(settings, self._load_dataset)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._woken = threading.Event()
        self._attempt_started: dict[str, float] = {}  # job id → monotonic start of this attempt
        self._stop_intent: dict[str, str] = {}  # job id → "cancel" | "timeout" | "abandon"
        self._last_loop = time.monotonic()
        self._next_poll = self._next_heartbeat = 0.0  # monotonic times the steps are due

    # --- public interface ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers and the supervisor thread (returns at once)."""
        self._thread = threading.Thread(target=self._run, name="job-supervisor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop workers; our running jobs go back to the queue and resume from their checkpoint."""
        self._stopping.set()
        self.executor.interrupt()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """A job was queued or a cancel was requested: look at the database now."""
        self._woken.set()
        self.executor.interrupt()

    def is_healthy(self) -> bool:
        thread = self._thread
        fresh = time.monotonic() - self._last_loop < HEALTHY_LOOP_SECONDS
        return thread is not None and thread.is_alive() and fresh and self.executor.is_healthy()

    # --- the loop --------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            if not self._start_executor():
                return
            self._guarded(self._recover_dead_instances)
            while not self._stopping.is_set():
                try:
                    self._iterate()
                except Exception:  # never let the thread die: nobody else would settle our jobs
                    logger.exception("job supervisor loop failed; going on in a second")
                    self._stopping.wait(1.0)
        finally:
            self._shutdown()

    def _start_executor(self) -> bool:
        """Start the executor, retrying each second (a scheduler not up yet, a spawn refused);
        False if asked to stop first. Queued jobs wait meanwhile; /readyz says not ready."""
        while not self._stopping.is_set():
            try:
                self.executor.start()
                return True
            except Exception:
                logger.exception("could not start the job executor; trying again in a second")
                self._stopping.wait(1.0)
        return False

    def _iterate(self) -> None:
        """Wait for events until the next due step, commit them, then run the due steps."""
        self._last_loop = now = time.monotonic()
        timeout = max(0.0, min(self._next_poll, self._next_heartbeat) - now)
        events = self.executor.poll(timeout)
        # Epochs first, in one transaction: a job's epochs always precede its outcome in a batch,
        # and one commit (one WAL fsync) per batch instead of per epoch keeps many jobs cheap.
        epochs = [event for event in events if isinstance(event, Epoch)]
        if epochs:
            self._guarded(lambda: self._record_epochs(epochs))
        for event in events:
            if not isinstance(event, Epoch):
                self._handle(event)
        now = time.monotonic()
        if self._woken.is_set() or now >= self._next_poll:
            self._woken.clear()
            self._guarded(self._pass_cancels)
            self._guarded(self._claim_while_room)
            self._next_poll = now + self.settings.poll_seconds
        if now >= self._next_heartbeat:
            self._guarded(self._heartbeat)
            self._next_heartbeat = now + self.settings.heartbeat_seconds
        self._enforce_wall_time()

    def _guarded(self, step: Callable[[], None]) -> None:
        """Run one bookkeeping step; a database hiccup is logged and retried on the next round."""
        try:
            step()
        except Exception:
            logger.exception("job supervisor step %s failed", step.__name__)

    def _shutdown(self) -> None:
        running = self.executor.running()
        self._guarded(self.executor.close)
        try:
            with self.database.write() as session:
                store.release_jobs(session, worker_id=self.instance_id, job_ids=running,
                                   now=utcnow(),
                                   refund_attempt=self.executor.reuses_released_attempts)
        except Exception:
            logger.exception("could not release running jobs; they resume when their lease expires")

    # --- time helpers ------------------------------------------------------------------------

    def _lease_until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.settings.lease_seconds)

    # --- claiming ----------------------------------------------------------------------------

    def _claim_while_room(self) -> None:
        while self.executor.capacity() > 0 and not self._stopping.is_set():
            job_id = self._claim_one()
            if job_id is None or not self._submit(job_id):
                return  # after a failed hand-off, the next poll tries again (not a busy loop)

    def _claim_one(self) -> str | None:
        with self.database.read() as session:  # most polls find nothing: no write lock for those
            if not store.any_queued(session):
                return None
        now = utcnow()
        with self.database.write() as session:  # claim_next re-checks the status under the lock
            return store.claim_next(
                session, worker_id=self.instance_id, now=now, lease_until=self._lease_until(now),
                skip_locked=not self.database.is_sqlite, exclude=self.executor.running(),
            )

    def _submit(self, job_id: str) -> bool:
        """Hand a claimed job to the executor; a job whose data is gone fails, others requeue.
        Whether the executor took it."""
        try:
            with self.database.read() as session:
                payload = store.job_payload(session, job_id)
            self.executor.submit(payload)
        except (LookupError, NoResultFound) as exc:
            self._finish(job_id, "failed", failure_reason="error", error=f"cannot run: {exc}")
            return True  # settled: the next queued job may go ahead
        except Exception:
            logger.exception("job %s: could not start; back to the queue", job_id)
            with self.database.write() as session:
                store.release_jobs(session, worker_id=self.instance_id, job_ids={job_id},
                                   now=utcnow(),
                                   refund_attempt=self.executor.reuses_released_attempts)
            return False
        self._attempt_started[job_id] = time.monotonic()
        logger.info("job %s: attempt %d started", job_id, payload.attempt)
        return True

    def _load_dataset(self, sha256: str) -> bytes:
        with self.database.read() as session:
            return store.dataset_bytes(session, sha256)

    # --- cancel, wall time, leases --------------------------------------------------------------

    def _pass_cancels(self) -> None:
        candidates = self.executor.running() - set(self._stop_intent)
        if not candidates:
            return
        with self.database.read() as session:
            cancelled = store.requested_cancels(session, candidates)
        for job_id in cancelled:
            self._stop(job_id, "cancel")

    def _stop(self, job_id: str, intent: str) -> None:
        self._stop_intent[job_id] = intent
        self.executor.cancel(job_id)

    def _enforce_wall_time(self) -> None:
        limit = self.settings.job_wall_time_seconds
        now = time.monotonic()
        for job_id, started in list(self._attempt_started.items()):
            if now - started > limit and job_id not in self._stop_intent:
                logger.warning("job %s: past its wall-time limit of %s s", job_id, limit)
                self._stop(job_id, "timeout")

    def _heartbeat(self) -> None:
        now = utcnow()
        running = self.executor.running()
        with self.database.write() as session:
            store.renew_leases(session, worker_id=self.instance_id, job_ids=running,
                               until=self._lease_until(now))
            for job_id in store.expired_running_jobs(session, now=now, exclude=running):
                self._settle_lost(session, job_id, worker_id=None, detail="its lease expired",
                                  lease_expired=True)

    def _recover_dead_instances(self) -> None:
        """At start-up: jobs left running by a process of this host that is gone resume now."""
        with self.database.write() as session:
            for job_id, owner in store.running_jobs_by_worker(session):
                if instance_is_dead(owner, me=self.instance_id):
                    self._settle_lost(session, job_id, worker_id=owner,
                                      detail=f"its server process ({owner}) is gone")

    def _settle_lost(self, session: Session, job_id: str, *, worker_id: str | None, detail: str,
                     lease_expired: bool = False) -> None:
        status = store.settle_lost_job(
            session, job_id=job_id, worker_id=worker_id, max_attempts=self.settings.max_attempts,
            detail=detail, now=utcnow(), lease_expired=lease_expired,
        )
        if status is not None:
            logger.warning("job %s: %s → %s", job_id, detail, status)
            self._woken.set()

    # --- events -----------------------------------------------------------------------------------

    def _handle(self, event: ExecutorEvent) -> None:
        self._attempt_started.pop(event.job_id, None)
        intent = self._stop_intent.pop(event.job_id, None)
        self._woken.set()  # a slot is free: claim the next job now
        for attempt in range(FINISH_RETRIES):
            try:
                self._conclude(event, intent)
                return
            except Exception:
                logger.exception("job %s: recording its outcome failed (try %d)", event.job_id,
                                 attempt + 1)
                self._stopping.wait(0.2 * 2**attempt)

    def _record_epochs(self, events: list[Epoch]) -> None:
        now = utcnow()
        newest = {event.job_id: event for event in events if event.checkpoint is not None}
        lost: set[str] = set()
        with self.database.write() as session:
            for event in events:
                # Only a job's newest checkpoint in the batch is worth writing.
                checkpoint = event.checkpoint if newest.get(event.job_id) is event else None
                if not store.record_epoch(
                    session, job_id=event.job_id, worker_id=self.instance_id, report=event.report,
                    checkpoint=checkpoint, now=now, lease_until=self._lease_until(now),
                ):
                    lost.add(event.job_id)
        for job_id in lost - self._stop_intent.keys():
            logger.warning("job %s is no longer ours; stopping our copy", job_id)
            self._stop(job_id, "abandon")

    def _conclude(self, event: ExecutorEvent, intent: str | None) -> None:
        if intent == "abandon":
            return
        if isinstance(event, Finished):
            self._conclude_finished(event, intent)
        elif isinstance(event, Failed):
            self._finish(event.job_id, "failed", failure_reason=event.reason, error=event.error)
        elif isinstance(event, Lost):
            self._conclude_stopped(event.job_id, intent, detail=event.detail)

    def _conclude_finished(self, event: Finished, intent: str | None) -> None:
        result, status = event.result, event.result.get("status")
        if status == "succeeded" and event.model is not None:
            with self.database.write() as session:
                store.publish_model(session, job_id=event.job_id, worker_id=self.instance_id,
                                    result=result, model=event.model, now=utcnow())
        elif status == "cancelled":
            self._conclude_stopped(event.job_id, intent, detail="it stopped without being asked")
        else:
            reason = result.get("failure_reason") or "error"
            self._finish(event.job_id, "failed", failure_reason=reason, error=result.get("error"),
                         stop_reason=result.get("stop_reason"))

    def _conclude_stopped(self, job_id: str, intent: str | None, *, detail: str) -> None:
        if intent == "cancel":
            self._finish(job_id, "cancelled", stop_reason="cancelled")
        elif intent == "timeout":
            limit = self.settings.job_wall_time_seconds
            self._finish(job_id, "failed", failure_reason="timed_out",
                         error=f"the job ran longer than its wall-time limit of {limit:g} s; train "
                               "fewer epochs or a smaller network, or raise "
                               "FEEDFORWARD_JOB_WALL_TIME_SECONDS")
        else:
            with self.database.write() as session:
                self._settle_lost(session, job_id, worker_id=self.instance_id, detail=detail)

    def _finish(self, job_id: str, status: str, **outcome: str | None) -> None:
        with self.database.write() as session:
            store.finish_job(session, job_id=job_id, worker_id=self.instance_id, status=status,
                             now=utcnow(), **outcome)
