"""The Dask executor: jobs run as tasks on a Dask cluster (`FEEDFORWARD_EXECUTOR=dask`).

The supervisor's thread calls this class; a thread-safe (synchronous) `distributed.Client` runs its
own event loop beside it. Each attempt is one task running `dask_worker.run_attempt` — the same pure
`task.run_job` as the local backend — so workers never need the database:

- datasets are scattered once per sha256 (broadcast to the workers present, copied worker-to-worker
  to those that join later) and the future is reused by every job on the same data;
- progress comes back as it happens: the worker logs each epoch on this client's topic
  (`log_event` → `subscribe_topic`), its checkpoint inside when small, else on the attempt's Queue;
- cancel sets the attempt's `distributed.Event`, which the task reads between mini-batches
  (`Future.cancel` cannot stop a running task);
- a worker that dies mid-task makes the scheduler rerun the task, which notices and returns at once;
  this becomes a Lost event, and the supervisor resubmits the job from its last checkpoint;
- submitting attempt k sets the cancel Events of attempts < k, so that a copy left running by an
  API process that died stops at its next mini-batch.
The scheduler keeps nothing durable: after a restart, the supervisor resubmits from the database.
"""
# distributed's public API is only partly annotated.
# mypy: disallow-untyped-calls=False

from __future__ import annotations

import asyncio
import logging
import queue
import time
import uuid
from dataclasses import dataclass
from typing import Any

from distributed import Client, Event, Future, Queue

from service.jobs.dask_datasets import ScatteredDatasets
from service.jobs.dask_worker import Channels, run_attempt
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
from service.settings import Settings

__all__ = ["DaskExecutor"]

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 3.0
RECONNECT_EVERY_SECONDS = 10.0
CLUSTER_SIZE_TTL_SECONDS = 2.0  # how long the scheduler's id and worker thread count are trusted
CHECKPOINT_WAIT_SECONDS = 30.0  # it is queued before its epoch event leaves the worker
RESULT_WAIT_SECONDS = 120.0
UNSTARTED_CANCEL_SECONDS = 3.0  # a cancelled attempt still waiting for a worker is dropped
UNRESPONSIVE_CANCEL_SECONDS = 60.0  # a started attempt that ignores its cancel flag is given up


@dataclass
class _Attempt:
    """One submitted attempt and what the executor has heard about it."""

    job_id: str
    attempt: int
    channels: Channels
    future: Future[Any]
    checkpoints: Queue
    datasets: frozenset[str]
    worker: str | None = None
    pid: int | None = None
    cancel_requested_at: float | None = None


class DaskExecutor(Executor):
    """Runs jobs on the cluster at settings.dask_scheduler, at most settings.workers at a time."""

    def __init__(self, settings: Settings, *, load_dataset: DatasetLoader) -> None:
        if not settings.dask_scheduler:
            raise ValueError("FEEDFORWARD_EXECUTOR=dask needs FEEDFORWARD_DASK_SCHEDULER=tcp://…")
        self._address = settings.dask_scheduler
        self._size = settings.workers
        self._blas_threads = settings.blas_threads
        self._topic = f"feedforward-progress-{uuid.uuid4().hex}"
        self._client: Client | None = None
        self._subscribed_to: str | None = None  # id of the scheduler that has our subscription
        self._next_connect = 0.0
        self._cluster_threads = 0  # worker threads in the cluster, as last read
        self._cluster_read_at: float | None = None  # monotonic time of that read; None: read now
        self._inbox: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._attempts: dict[str, _Attempt] = {}
        self._datasets = ScatteredDatasets(load_dataset)

    # --- connection ------------------------------------------------------------------------------

    # An attempt's cancel and started Events and its task key live on the scheduler, named by
    # (job, attempt), past this process: rerun under the same number after a clean shutdown, the
    # job would find its own old "started" marker (or close()'s cancel) and end Lost at once.
    reuses_released_attempts = False

    def start(self) -> None:
        self._connect()

    def _connect(self) -> bool:
        """Connect (again) if needed; never raises, so an unreachable scheduler means capacity 0.

        Called from the supervisor's thread only; a failed attempt blocks it for at most
        CONNECT_TIMEOUT_SECONDS, once per RECONNECT_EVERY_SECONDS.
        """
        client = self._client
        if client is not None and client.status in ("closing", "closed"):  # gave up reconnecting
            self._client = client = None
        if client is None:
            if time.monotonic() < self._next_connect:
                return False
            try:
                client = Client(
                    self._address, set_as_default=False, timeout=CONNECT_TIMEOUT_SECONDS
                )
            except Exception:
                logger.warning("Dask scheduler %s unreachable", self._address, exc_info=True)
                self._next_connect = time.monotonic() + RECONNECT_EVERY_SECONDS
                return False
            self._client = client
            self._subscribed_to = self._cluster_read_at = None  # subscriptions are per client
        if client.status != "running":
            self._cluster_read_at = None  # reconnecting: maybe to a restarted scheduler
            return False
        self._read_cluster(client)
        return True

    def _read_cluster(self, client: Client) -> None:
        """Once per CLUSTER_SIZE_TTL_SECONDS (and after any reconnect): one identity call gives the
        scheduler's id — a restarted scheduler forgot our subscription, so subscribe again — and
        the number of worker threads in the cluster."""
        read_at = self._cluster_read_at
        if read_at is not None and time.monotonic() - read_at <= CLUSTER_SIZE_TTL_SECONDS:
            return
        try:
            info = client.scheduler_info(n_workers=0)  # no per-worker details: totals only
            scheduler_id, threads = info.get("id"), int(info.get("total_threads", 0))
            if scheduler_id != self._subscribed_to:
                client.subscribe_topic(self._topic, self._on_event)
                self._subscribed_to = scheduler_id
        except (OSError, TimeoutError):
            logger.warning("could not read the Dask scheduler's identity", exc_info=True)
            threads = 0
        self._cluster_threads, self._cluster_read_at = threads, time.monotonic()

    def _on_event(self, event: tuple[float, dict[str, Any]]) -> None:
        """Called on the client's event loop, in order: hand the message to the supervisor."""
        self._inbox.put(("message", event[1]))

    def close(self) -> None:
        """Ask our running attempts to stop (the supervisor requeues their jobs); disconnect."""
        client, self._client = self._client, None
        if client is None:
            return
        for attempt in self._attempts.values():
            self._quietly(lambda a=attempt: Event(a.channels.cancel, client=client).set())
            self._quietly(attempt.checkpoints.close)  # the cancel Event stays: it stops the task
        self._attempts.clear()
        self._datasets.clear()
        self._quietly(lambda: client.unsubscribe_topic(self._topic))
        # The scheduler keeps the last 1,000 events of every topic (inline checkpoints included)
        # for as long as it runs; this process's topic is never read again.
        self._quietly(lambda: client.run_on_scheduler(_forget_topic, topic=self._topic))
        self._quietly(client.close)

    # --- the interface -------------------------------------------------------------------------

    def capacity(self) -> int:
        if not self._connect():
            return 0
        return max(0, min(self._size, self._cluster_threads) - len(self._attempts))

    def running(self) -> set[str]:
        return set(self._attempts)

    def is_healthy(self) -> bool:
        """Connected to the scheduler (read-only: /readyz must not wait for a connect attempt)."""
        client = self._client
        return client is not None and client.status == "running"

    def interrupt(self) -> None:
        self._inbox.put(None)

    @property
    def scatter_count(self) -> int:
        """How many times a dataset was sent to the cluster (tests check it stays once per sha)."""
        return self._datasets.scatter_count

    def job_workers(self) -> dict[str, dict[str, Any]]:
        """Where each started job runs: {"worker", "pid", "attempt"}; for tests and operators."""
        attempts = list(self._attempts.values())  # a snapshot: the supervisor's thread mutates it
        return {
            a.job_id: {"worker": a.worker, "pid": a.pid, "attempt": a.attempt}
            for a in attempts
            if a.worker is not None
        }

    def submit(self, job: JobPayload) -> None:
        client = self._require_client()
        channels = Channels.for_attempt(self._topic, job.job_id, job.attempt)
        self._stop_earlier_attempts(client, job)
        blobs = {sha: self._datasets.future(client, sha) for sha in set(job.datasets.values())}
        # Our reference keeps the checkpoint queue alive until we have read it; the worker's
        # goes when its task ends, maybe before we get there.
        checkpoints = Queue(channels.checkpoints, client=client)
        future = client.submit(
            run_attempt,
            job.header(),
            job.resume_from,
            blobs,
            channels,
            self._blas_threads,
            key=f"feedforward-job-{job.job_id}-{job.attempt}",
            pure=False,
            retries=0,
        )
        self._attempts[job.job_id] = _Attempt(
            job.job_id, job.attempt, channels, future, checkpoints, frozenset(blobs)
        )
        future.add_done_callback(
            lambda done, ids=(job.job_id, job.attempt): self._inbox.put(("done", *ids, done))
        )

    def cancel(self, job_id: str) -> None:
        attempt = self._attempts.get(job_id)
        if attempt is None or attempt.cancel_requested_at is not None:
            return
        attempt.cancel_requested_at = time.monotonic()
        Event(attempt.channels.cancel, client=self._require_client()).set()

    def poll(self, timeout: float) -> list[ExecutorEvent]:
        items: list[tuple[Any, ...]] = []
        try:
            first = self._inbox.get(timeout=max(0.0, timeout))
            items += [first] if first is not None else []
            while True:
                item = self._inbox.get_nowait()
                items += [item] if item is not None else []
        except queue.Empty:
            pass
        events = [event for item in items if (event := self._guarded(item)) is not None]
        return events + self._give_up_on_stuck_cancels()

    def _guarded(self, item: tuple[Any, ...]) -> ExecutorEvent | None:
        """One item to an event; a malformed one (a worker of another version?) is logged."""
        try:
            return self._to_event(item)
        except Exception:
            logger.exception("ignoring a Dask message the executor cannot read: %.200r", item)
            return None

    # --- messages and outcomes -------------------------------------------------------------------

    def _to_event(self, item: tuple[Any, ...]) -> ExecutorEvent | None:
        if item[0] == "message":
            return self._on_message(item[1])
        _, job_id, attempt_number, future = item
        attempt = self._attempts.get(job_id)
        if attempt is None or attempt.attempt != attempt_number:
            return None
        del self._attempts[job_id]
        try:
            return self._outcome(attempt, future)
        finally:
            self._release(attempt)

    def _on_message(self, message: dict[str, Any]) -> ExecutorEvent | None:
        attempt = self._attempts.get(message.get("job_id", ""))
        if attempt is None or attempt.attempt != message.get("attempt"):
            return None  # a late message from an attempt we no longer run
        if message["kind"] == "start":
            attempt.worker, attempt.pid = message.get("worker"), message.get("pid")
            return None
        checkpoint = None
        if message.get("checkpoint") == "inline":
            checkpoint = bytes(message["checkpoint_bytes"])
        elif message.get("checkpoint") == "queued":
            checkpoint = self._take_checkpoint(attempt)
        return Epoch(attempt.job_id, message["report"], checkpoint)

    def _take_checkpoint(self, attempt: _Attempt) -> bytes | None:
        try:
            data = attempt.checkpoints.get(timeout=CHECKPOINT_WAIT_SECONDS)
        except (TimeoutError, OSError):
            logger.warning("job %s: checkpoint missing; keeping the previous one", attempt.job_id)
            return None
        return bytes(data)

    def _outcome(self, attempt: _Attempt, future: Future[Any]) -> ExecutorEvent:
        job_id = attempt.job_id
        try:
            outcome = future.result(timeout=RESULT_WAIT_SECONDS)
        except (Exception, asyncio.CancelledError) as exc:  # KilledWorker, lost scheduler, cancel…
            return Lost(job_id, f"its Dask task ended with {type(exc).__name__}: {exc}")
        if outcome["outcome"] == "finished":
            return Finished(job_id, outcome["result"], outcome["model"])
        if outcome["outcome"] == "failed":
            return Failed(job_id, outcome["reason"], outcome["error"])
        return Lost(job_id, f"its Dask worker ({attempt.worker or 'unknown'}) was lost mid-run")

    def _give_up_on_stuck_cancels(self) -> list[ExecutorEvent]:
        """A cancelled attempt that never started, or that ignores its flag, is dropped as Lost."""
        now, lost = time.monotonic(), list[ExecutorEvent]()
        for attempt in list(self._attempts.values()):
            asked = attempt.cancel_requested_at
            started = attempt.worker is not None
            patience = UNRESPONSIVE_CANCEL_SECONDS if started else UNSTARTED_CANCEL_SECONDS
            if asked is not None and now - asked > patience:
                del self._attempts[attempt.job_id]
                self._quietly(attempt.future.cancel)
                self._release(attempt, keep_cancel=True)  # it may still start or still run
                lost.append(Lost(attempt.job_id, "it did not stop when asked"))
        return lost

    # --- cluster-side bookkeeping ----------------------------------------------------------------

    def _stop_earlier_attempts(self, client: Client, job: JobPayload) -> None:
        """A previous attempt may still run, left by an API process that died: tell it to stop,
        and drop the checkpoints it queued for that process (the queue itself outlives it)."""
        for earlier in range(1, job.attempt):
            channels = Channels.for_attempt(self._topic, job.job_id, earlier)
            Event(channels.cancel, client=client).set()
            stale = Queue(channels.checkpoints, client=client)
            if stale.qsize():
                stale.get(batch=True)
            stale.close()

    def _release(self, attempt: _Attempt, *, keep_cancel: bool = False) -> None:
        """Free what the scheduler holds for a concluded attempt."""
        client = self._client
        if client is None:
            return
        self._quietly(attempt.checkpoints.close)
        self._quietly(lambda: Event(attempt.channels.started, client=client).clear())
        if not keep_cancel:
            self._quietly(lambda: Event(attempt.channels.cancel, client=client).clear())
        self._datasets.forget_idle(self._datasets_in_use())

    def _datasets_in_use(self) -> set[str]:
        return set().union(*(attempt.datasets for attempt in self._attempts.values()))

    def _require_client(self) -> Client:
        if not self._connect() or self._client is None:
            raise ConnectionError(f"the Dask scheduler {self._address} is unreachable")
        return self._client

    @staticmethod
    def _quietly(action: Any) -> None:
        try:
            action()
        except Exception:
            logger.debug("cleanup step failed", exc_info=True)


def _forget_topic(topic: str, dask_scheduler: Any = None) -> None:
    """Run on the scheduler: drop a topic's stored events (its broker is not public API; where it
    is missing, the events stay until the scheduler restarts)."""
    broker = getattr(dask_scheduler, "_broker", None)
    if broker is not None:
        broker.truncate(topic)
