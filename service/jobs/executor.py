"""The Executor interface: where jobs run. The supervisor talks only to this; backends implement it.

The supervisor owns every database write; an executor only moves plain data: it receives
JobPayloads, runs `service.jobs.task.run_job` somewhere (local worker processes, a Dask cluster) and
hands back events. All methods are called from the supervisor's thread, except `interrupt`, which
any thread may call to make a blocked `poll` return early.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DatasetLoader",
    "Epoch",
    "Executor",
    "ExecutorEvent",
    "Failed",
    "Finished",
    "JobPayload",
    "Lost",
]

DatasetLoader = Callable[[str], bytes]
"""sha256 → the dataset's canonical npz bytes (X, y); called only when a worker lacks them."""


@dataclass(frozen=True)
class JobPayload:
    """Everything a worker needs to run one attempt of a job, as plain data.

    `spec` holds the TrainingSpec fields; `datasets` maps "train" (and "validation" when a separate
    validation dataset is used) to a sha256 that the executor resolves with its DatasetLoader;
    `resume_from` is the last committed checkpoint, None for a fresh start.
    """

    job_id: str
    attempt: int
    spec: dict[str, Any]
    task: str
    n_classes: int | None
    validation_split: float | None
    datasets: dict[str, str]
    metadata: dict[str, Any] = field(default_factory=dict)
    resume_from: bytes | None = None

    def header(self) -> dict[str, Any]:
        """The JSON-able part (everything but the checkpoint bytes)."""
        return {
            "job_id": self.job_id,
            "attempt": self.attempt,
            "spec": self.spec,
            "task": self.task,
            "n_classes": self.n_classes,
            "validation_split": self.validation_split,
            "datasets": self.datasets,
            "metadata": self.metadata,
        }


@dataclass(frozen=True)
class Epoch:
    """One finished epoch: run_job's report dict (metrics, layers, findings) and its checkpoint."""

    job_id: str
    report: dict[str, Any]
    checkpoint: bytes | None


@dataclass(frozen=True)
class Finished:
    """run_job returned: `result` is its dict without the model bytes, which travel in `model`."""

    job_id: str
    result: dict[str, Any]
    model: bytes | None


@dataclass(frozen=True)
class Failed:
    """The job could not run (bad data, out of memory, a bug): `reason` is a Job.failure_reason."""

    job_id: str
    reason: str
    error: str


@dataclass(frozen=True)
class Lost:
    """The process or machine running the job vanished; the supervisor decides resume or fail."""

    job_id: str
    detail: str


ExecutorEvent = Epoch | Finished | Failed | Lost


class Executor(ABC):
    """A place to run jobs. Implementations: LocalExecutor (processes), DaskExecutor (a cluster)."""

    # Whether a job released on a clean shutdown may run again under the same attempt number
    # (so that a restart costs no attempt). Not where an attempt's state outlives this process.
    reuses_released_attempts = True

    @abstractmethod
    def start(self) -> None:
        """Bring up workers (or connect to the cluster)."""

    @abstractmethod
    def capacity(self) -> int:
        """How many more jobs can start right now."""

    @abstractmethod
    def submit(self, job: JobPayload) -> None:
        """Start one attempt of a job; only called while capacity() > 0."""

    @abstractmethod
    def cancel(self, job_id: str) -> None:
        """Ask the job to stop (cooperatively, then by force); it ends with Finished or Lost."""

    @abstractmethod
    def poll(self, timeout: float) -> list[ExecutorEvent]:
        """Events that arrived, waiting up to `timeout` seconds for the first one."""

    @abstractmethod
    def interrupt(self) -> None:
        """Make a blocked poll return now; safe to call from any thread."""

    @abstractmethod
    def running(self) -> set[str]:
        """Ids of the jobs this executor is running."""

    @abstractmethod
    def is_healthy(self) -> bool:
        """Workers are up (or the cluster is reachable)."""

    @abstractmethod
    def close(self) -> None:
        """Stop every worker; running jobs are abandoned (they resume from their checkpoint)."""
