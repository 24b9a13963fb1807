"""Test helpers for the jobs runtime: a database with rows to run, and a stand-in training task.

`fake_worker_main` is a worker entry point (spawn imports it by name in the child) that runs
the real worker loop with `fake_run_job` instead of the engine, so the supervisor, the local
executor and the protocol are tested with real processes and real pipes. A test chooses a job's
behaviour through its dataset's `target_name`: "normal", "slow", "hang",
"crash_once_at:<epoch>", "crash_always", "diverge", "error", "allocate".
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import numpy as np

from service.db import Database
from service.jobs.executor import Epoch, Executor, ExecutorEvent
from service.models import Base, Dataset, DatasetBlob, Job
from service.settings import Settings
from tests import polling
from tests.polling import wait_until as wait_for

FAKE_BATCHES_PER_EPOCH = 5
BATCH_SECONDS = {"normal": 0.002, "slow": 0.05}


def make_database(tmp_path: Path, **overrides: Any) -> Database:
    """A fresh SQLite database in tmp_path with the schema from the models (tests only)."""
    values: dict[str, Any] = {"data_dir": tmp_path, "workers": 2, "heartbeat_seconds": 0.2,
                              "lease_seconds": 1.0, "poll_seconds": 0.05, "blas_threads": 1}
    settings = Settings(**(values | overrides))
    database = Database(settings)
    Base.metadata.create_all(database.engine)
    return database


def add_dataset(database: Database, behaviour: str = "normal", n_samples: int = 40) -> str:
    rng = np.random.default_rng(len(behaviour))
    X = rng.standard_normal((n_samples, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    buffer = io.BytesIO()
    np.savez(buffer, X=X, y=y)
    data = buffer.getvalue()
    sha = hashlib.sha256(data + behaviour.encode()).hexdigest()
    with database.write() as session:
        if session.get(DatasetBlob, sha) is None:
            session.add(DatasetBlob(sha256=sha, arrays=data, size_bytes=len(data)))
            session.flush()  # no relationship tells the unit of work to insert the blob first
        dataset = Dataset(owner="public", name=behaviour, task="classification",
                          n_samples=n_samples, n_features=3, n_targets=1,
                          feature_names=["a", "b", "c"], target_name=behaviour, classes=[0, 1],
                          sha256=sha)
        session.add(dataset)
        session.flush()
        return dataset.id


def job_spec(dataset_id: str, *, epochs: int = 3, **fields: Any) -> dict[str, Any]:
    """A stored job body as the API writes it (TrainingSpec fields + dataset_id + validation)."""
    return {
        "dataset_id": dataset_id, "validation": None,
        "network": {"layers": [{"type": "dense", "units": 4, "activation": {"name": "tanh"}},
                               {"type": "dense", "units": 2, "activation": {"name": "softmax"}}],
                    "init": "auto"},
        "loss": "cross_entropy", "optimizer": {"name": "sgd", "learning_rate": 0.1},
        "batch_size": 8, "epochs": epochs, "l2": 0.0, "early_stopping": None,
        "standardize": True, "seed": 7, "dtype": "float32", "diagnostics_every": 1,
    } | fields


def add_job(database: Database, dataset_id: str, *, epochs: int = 3, **columns: Any) -> str:
    with database.write() as session:
        job = Job(owner="public", dataset_id=dataset_id, spec=job_spec(dataset_id, epochs=epochs),
                  epochs=epochs, **columns)
        session.add(job)
        session.flush()
        return job.id


def a_dead_pid() -> int:
    """The pid of a child process that has exited and been reaped."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def get_job(database: Database, job_id: str) -> Job:
    with database.read() as session:
        return session.get_one(Job, job_id)


def wait_for_status(database: Database, job_id: str, *statuses: str, timeout: float = 20.0) -> Job:
    return wait_for(lambda: (job := get_job(database, job_id)).status in statuses and job,
                    timeout=timeout)


# --- the stand-in task -----------------------------------------------------------------------


def _metrics(epoch: int) -> dict[str, Any]:
    return {"epoch": epoch, "train_loss": 1.0 / epoch, "train_accuracy": 0.5,
            "val_loss": None, "val_accuracy": None, "learning_rate": 0.1, "seconds": 0.01}


def _train_epoch(behaviour: str, should_stop: Any) -> bool:
    """Simulated mini-batches; True when asked to stop. "hang" never looks at the flag."""
    if behaviour == "hang":
        time.sleep(3600)
    for _ in range(FAKE_BATCHES_PER_EPOCH):
        if should_stop():
            return True
        time.sleep(BATCH_SECONDS.get(behaviour, 0.002))  # stands in for computing a batch
    return False


def _outcome(status: str, **fields: Any) -> dict[str, Any]:
    return {"status": status, "stop_reason": None, "best_epoch": None, "findings": [],
            "metrics": None, "failure_reason": None, "error": None, "model": None} | fields


def fake_run_job(payload: dict[str, Any], arrays: dict[str, np.ndarray], report: Any,
                 should_stop: Any) -> dict[str, Any]:
    """Behaves like task.run_job: checkpoints are JSON {"epoch": k}; resumes continue after k."""
    behaviour = payload["metadata"]["target_name"]
    resumed = json.loads(payload["resume_from"])["epoch"] if payload.get("resume_from") else 0
    if behaviour == "error":
        raise RuntimeError("a bug in the task")
    if behaviour == "allocate":
        np.ones(10**11, dtype=np.float64)  # 800 GB: beyond any RLIMIT_AS
    if behaviour == "diverge":
        return _outcome("failed", failure_reason="diverged", stop_reason="diverged",
                        error="loss became NaN at epoch 1; lower the learning rate")
    for epoch in range(resumed + 1, payload["spec"]["epochs"] + 1):
        if _train_epoch(behaviour, should_stop):
            return _outcome("cancelled", stop_reason="cancelled")
        crash_at = behaviour.partition(":")[2]
        if behaviour == "crash_always" or (crash_at and payload["attempt"] == 1
                                           and epoch == int(crash_at)):
            os._exit(3)
        report({"epoch": epoch, "metrics": _metrics(epoch), "layers": [{"layer": 1}],
                "findings": [], "checkpoint": json.dumps({"epoch": epoch}).encode()})
    model = {"resumed_from": resumed, "rows": int(arrays["X"].shape[0]),
             "attempt": payload["attempt"], "X_dtype": str(arrays["X"].dtype)}
    last = payload["spec"]["epochs"]
    return _outcome("succeeded", stop_reason="max_epochs", best_epoch=last,
                    metrics=_metrics(last), model=json.dumps(model).encode())


def fake_worker_main(conn: Connection, cancel: Event, blas_threads: int, memory_bytes: int | None,
                     parent_pid: int) -> None:
    from service.jobs.worker import serve
    from service.jobs.worker_boot import limit_memory

    limit_memory(memory_bytes)
    serve(conn, cancel, parent_pid=parent_pid, blas_threads=blas_threads, numpy_was_loaded=True,
          run=fake_run_job)


def collect(
    executor: Executor, done: Callable[[list[ExecutorEvent]], bool], timeout: float = 60.0
) -> list[ExecutorEvent]:
    """Poll an executor's events until `done(events)` holds; fail after `timeout` seconds."""
    return polling.collect(lambda: executor.poll(0.1), done, timeout=timeout,
                           message="the executor's events")


def concluded(job_id: str) -> Callable[[list[ExecutorEvent]], bool]:
    """`done` for collect: the job's outcome (Finished, Failed or Lost) has arrived."""
    return lambda events: any(e.job_id == job_id and not isinstance(e, Epoch) for e in events)


def outcome(events: list[ExecutorEvent], job_id: str) -> ExecutorEvent:
    return next(e for e in events if e.job_id == job_id and not isinstance(e, Epoch))
