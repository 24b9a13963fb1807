"""The supervisor's database statements: claim, lease, record epochs, finish, recover.

Every state change is a guarded UPDATE (`WHERE status='running' AND worker_id=:me`), so a supervisor
that lost a job's lease (another one took it over) can never overwrite it. Each function runs inside
a transaction its caller opened (`Database.write()`, BEGIN IMMEDIATE on SQLite).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Result, case, delete, func, insert, select, update
from sqlalchemy.orm import Session

from engine.spec import TrainingSpec, parameter_count, resolve_loss
from service.jobs.executor import JobPayload
from service.models import Checkpoint, Dataset, DatasetBlob, EpochRecord, Job, Model, ModelWeights

__all__ = [
    "METRIC_FIELDS",
    "any_queued",
    "claim_next",
    "dataset_bytes",
    "expired_running_jobs",
    "finish_job",
    "job_payload",
    "publish_model",
    "record_epoch",
    "release_jobs",
    "renew_leases",
    "requested_cancels",
    "running_jobs_by_worker",
    "settle_lost_job",
    "training_fields",
]

METRIC_FIELDS = (
    "train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds",
)
_NO_UPDATE_SYNC = {"synchronize_session": False}


def training_fields(job_spec: dict[str, Any]) -> dict[str, Any]:
    """The TrainingSpec part of a stored job body (which also holds dataset_id, validation)."""
    return {name: value for name, value in job_spec.items() if name in TrainingSpec.model_fields}


# --- claiming and leases --------------------------------------------------------------------------


def any_queued(session: Session) -> bool:
    """Whether claim_next has a job to take: a read, so an idle poll takes no write lock."""
    queued = select(Job.id).where(Job.status == "queued").limit(1)
    return session.execute(queued).first() is not None


def claim_next(
    session: Session, *, worker_id: str, now: datetime, lease_until: datetime, skip_locked: bool,
    exclude: Collection[str] = (),
) -> str | None:
    """Atomically move the oldest queued job to running under this worker's lease; its id or None.

    SQLite serialises writers (BEGIN IMMEDIATE), so the subquery + UPDATE is exclusive; PostgreSQL
    gets `FOR UPDATE SKIP LOCKED` so replicas claiming at once take different rows without waiting.
    `exclude`: jobs the caller still runs a copy of. One whose lease lapsed (a stalled loop) may
    have been requeued by another replica; claimed back by the same instance, both copies would
    pass the worker_id guard and write epochs. It waits until that copy is abandoned instead.
    """
    oldest = select(Job.id).where(Job.status == "queued")
    if exclude:
        oldest = oldest.where(Job.id.not_in(list(exclude)))
    oldest = oldest.order_by(Job.created_at, Job.id).limit(1)
    if skip_locked:
        oldest = oldest.with_for_update(skip_locked=True)
    claim = (
        update(Job)
        .where(Job.id == oldest.scalar_subquery(), Job.status == "queued")
        .values(
            status="running", worker_id=worker_id, lease_expires_at=lease_until,
            attempt=Job.attempt + 1, started_at=func.coalesce(Job.started_at, now),
        )
        .returning(Job.id)
        .execution_options(**_NO_UPDATE_SYNC)
    )
    job_id = session.execute(claim).scalar_one_or_none()
    if job_id is not None:
        _forget_epochs_after_checkpoint(session, job_id)
    return job_id


def _forget_epochs_after_checkpoint(session: Session, job_id: str) -> None:
    """A resumed run redoes every epoch after its checkpoint; drop their rows from the lost run."""
    kept = session.execute(select(Checkpoint.epoch).where(Checkpoint.job_id == job_id)).scalar()
    kept = kept or 0
    session.execute(
        delete(EpochRecord).where(EpochRecord.job_id == job_id, EpochRecord.epoch > kept)
    )
    last = session.execute(
        select(EpochRecord).where(EpochRecord.job_id == job_id, EpochRecord.epoch == kept)
    ).scalar_one_or_none()
    metrics = {"epoch": kept, **{f: getattr(last, f) for f in METRIC_FIELDS}} if last else None
    session.execute(
        update(Job).where(Job.id == job_id).values(epoch=kept, metrics=metrics)
        .execution_options(**_NO_UPDATE_SYNC)
    )


def renew_leases(session: Session, *, worker_id: str, job_ids: set[str], until: datetime) -> None:
    if job_ids:
        session.execute(
            update(Job)
            .where(Job.id.in_(job_ids), Job.worker_id == worker_id, Job.status == "running")
            .values(lease_expires_at=until)
            .execution_options(**_NO_UPDATE_SYNC)
        )


def requested_cancels(session: Session, job_ids: set[str]) -> set[str]:
    if not job_ids:
        return set()
    rows = session.execute(select(Job.id).where(Job.id.in_(job_ids), Job.cancel_requested))
    return set(rows.scalars())


def expired_running_jobs(session: Session, *, now: datetime, exclude: set[str]) -> list[str]:
    """Running jobs whose lease ran out (nobody renewed it), except the ones we are running."""
    rows = session.execute(
        select(Job.id).where(Job.status == "running", Job.lease_expires_at < now)
    ).scalars()
    return [job_id for job_id in rows if job_id not in exclude]


def running_jobs_by_worker(session: Session) -> list[tuple[str, str | None]]:
    return [(row.id, row.worker_id) for row in session.execute(
        select(Job.id, Job.worker_id).where(Job.status == "running")
    )]


# --- payloads ----------------------------------------------------------------------------------


def job_payload(session: Session, job_id: str) -> JobPayload:
    """Everything a worker needs for the job's next attempt (datasets by sha256, the checkpoint)."""
    job = session.get_one(Job, job_id)
    dataset = session.get_one(Dataset, job.dataset_id)
    if dataset.sha256 is None:
        raise LookupError(f"dataset {dataset.id} was deleted")
    datasets = {"train": dataset.sha256}
    validation = job.spec.get("validation") or {}
    if job.validation_dataset_id is not None:
        validation_dataset = session.get_one(Dataset, job.validation_dataset_id)
        if validation_dataset.sha256 is None:
            raise LookupError(f"validation dataset {validation_dataset.id} was deleted")
        datasets["validation"] = validation_dataset.sha256
    checkpoint = session.get(Checkpoint, job_id)
    return JobPayload(
        job_id=job.id,
        attempt=job.attempt,
        spec=training_fields(job.spec),
        task=dataset.task,
        n_classes=len(dataset.classes or []) if dataset.task == "classification" else None,
        validation_split=validation.get("split") if isinstance(validation, dict) else None,
        datasets=datasets,
        metadata={"job_id": job.id, "dataset_id": dataset.id, "classes": dataset.classes,
                  "feature_names": dataset.feature_names, "target_name": dataset.target_name},
        resume_from=checkpoint.state if checkpoint is not None else None,
    )


def dataset_bytes(session: Session, sha256: str) -> bytes:
    query = select(DatasetBlob.arrays).where(DatasetBlob.sha256 == sha256)
    return session.execute(query).scalar_one()


# --- progress and outcomes --------------------------------------------------------------------


def _rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE matched (DML results are CursorResults)."""
    return cast(CursorResult[Any], result).rowcount


def _replace(session: Session, model: Any, key: dict[str, Any], values: dict[str, Any]) -> None:
    """Portable upsert without reading the old row (it may hold a big blob): delete, then insert."""
    session.execute(delete(model).filter_by(**key))
    session.execute(insert(model).values(**key, **values))


def record_epoch(
    session: Session, *, job_id: str, worker_id: str, report: dict[str, Any],
    checkpoint: bytes | None, now: datetime, lease_until: datetime,
) -> bool:
    """Commit one epoch (metrics row, diagnostics, checkpoint, job progress); False if not ours.

    A `partial` report is a checkpoint taken inside a long epoch: it renews the lease and
    replaces the checkpoint (its `epoch` counts the whole epochs before it) and nothing else.
    """
    epoch = int(report["epoch"])
    partial = bool(report.get("partial"))
    progress: dict[str, Any] = {"lease_expires_at": lease_until}
    if not partial:
        progress |= {"epoch": epoch, "metrics": report["metrics"]}
    owned = _rowcount(session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == "running")
        .values(**progress)
        .execution_options(**_NO_UPDATE_SYNC)
    ))
    if not owned:
        return False
    if partial:
        if checkpoint is not None:
            _replace(session, Checkpoint, {"job_id": job_id},
                     {"epoch": epoch, "state": checkpoint, "updated_at": now})
        return True
    metrics = report["metrics"]
    row = {name: metrics.get(name) for name in METRIC_FIELDS}
    row["learning_rate"] = row["learning_rate"] or 0.0
    row["seconds"] = row["seconds"] or 0.0
    _replace(session, EpochRecord, {"job_id": job_id, "epoch": epoch},
             {**row, "layers": report.get("layers", []), "findings": report.get("findings", [])})
    if checkpoint is not None:
        _replace(session, Checkpoint, {"job_id": job_id},
                 {"epoch": epoch, "state": checkpoint, "updated_at": now})
    return True


def finish_job(
    session: Session, *, job_id: str, worker_id: str | None, status: str, now: datetime,
    failure_reason: str | None = None, error: str | None = None, stop_reason: str | None = None,
) -> bool:
    """Move a running job to a terminal status (or back to queued); False if it was not ours."""
    guard = [Job.id == job_id, Job.status == "running"]
    if worker_id is not None:
        guard.append(Job.worker_id == worker_id)
    terminal = status != "queued"
    values: dict[str, Any] = {"status": status, "lease_expires_at": None}
    if terminal:
        values |= {"failure_reason": failure_reason, "error": error, "stop_reason": stop_reason,
                   "finished_at": now}
    else:
        values |= {"worker_id": None}
    result = session.execute(update(Job).where(*guard).values(**values)
                             .execution_options(**_NO_UPDATE_SYNC))
    finished = _rowcount(result) > 0
    if finished and terminal:  # nothing resumes a finished job: its weights + optimizer state go
        session.execute(delete(Checkpoint).where(Checkpoint.job_id == job_id))
    return finished


def publish_model(
    session: Session, *, job_id: str, worker_id: str, result: dict[str, Any], model: bytes,
    now: datetime,
) -> str | None:
    """Model + weights + job `succeeded` in this one transaction; the model id, or None if not ours.

    A job whose cancel was requested before it finished ends `cancelled` and publishes nothing.
    """
    job = session.get_one(Job, job_id)
    if job.status != "running" or job.worker_id != worker_id:
        return None
    if job.cancel_requested:
        finish_job(session, job_id=job_id, worker_id=worker_id, status="cancelled", now=now,
                   stop_reason="cancelled")
        return None
    dataset = session.get_one(Dataset, job.dataset_id)
    spec = TrainingSpec.model_validate(training_fields(job.spec))
    model_row = Model(
        owner=job.owner, job_id=job.id, dataset_id=dataset.id,
        network=spec.network.model_dump(mode="json"),
        loss=resolve_loss(spec, dataset.task),  # type: ignore[arg-type]
        task=dataset.task, n_features=dataset.n_features,
        parameter_count=parameter_count(spec.network, dataset.n_features),
        classes=dataset.classes, best_epoch=result.get("best_epoch"),
        metrics=result.get("metrics"), findings=result.get("findings") or [], created_at=now,
    )
    session.add(model_row)
    session.flush()
    session.add(ModelWeights(model_id=model_row.id, data=model))
    finish_job(session, job_id=job_id, worker_id=worker_id, status="succeeded", now=now,
               stop_reason=result.get("stop_reason"))
    return model_row.id


def settle_lost_job(
    session: Session, *, job_id: str, worker_id: str | None, max_attempts: int, detail: str,
    now: datetime, lease_expired: bool = False,
) -> str | None:
    """A job whose runner vanished: cancelled if asked, else queued to resume, else worker_lost.

    `worker_id` (when given) must still hold the job; with `lease_expired` its lease must have run
    out, re-checked here in the same transaction so a lease renewed meanwhile is respected.
    """
    query = select(Job).where(Job.id == job_id, Job.status == "running")
    if worker_id is not None:
        query = query.where(Job.worker_id == worker_id)
    if lease_expired:
        query = query.where(Job.lease_expires_at < now)
    job = session.execute(query).scalar_one_or_none()
    if job is None:
        return None
    if job.cancel_requested:
        status, reason, error = "cancelled", None, None
    elif job.attempt < max_attempts:
        status, reason, error = "queued", None, None
    else:
        status, reason = "failed", "worker_lost"
        error = (f"the worker running this job was lost {job.attempt} times (last: {detail}); "
                 "if it runs out of memory, use a smaller batch_size or network")
    stop = "cancelled" if status == "cancelled" else None
    finish_job(session, job_id=job_id, worker_id=job.worker_id, status=status, now=now,
               failure_reason=reason, error=error, stop_reason=stop)
    return status


def release_jobs(
    session: Session, *, worker_id: str, job_ids: set[str], now: datetime,
    refund_attempt: bool = True,
) -> None:
    """On a clean shutdown our running jobs go back to the queue; the attempt is not counted
    unless `refund_attempt` is False (the executor cannot rerun an attempt number).

    A job whose cancel was requested (and answered 202) ends cancelled instead: queued again, it
    would count against its owner's queue and be trained once more after the restart.
    """
    if job_ids:
        session.execute(
            update(Job)
            .where(Job.id.in_(job_ids), Job.worker_id == worker_id, Job.status == "running",
                   Job.cancel_requested)
            .values(status="cancelled", stop_reason="cancelled", lease_expires_at=None,
                    finished_at=now)
            .execution_options(**_NO_UPDATE_SYNC)
        )
        ended = select(Job.id).where(Job.id.in_(job_ids), Job.status == "cancelled")
        session.execute(delete(Checkpoint).where(Checkpoint.job_id.in_(ended)))
        session.execute(
            update(Job)
            .where(Job.id.in_(job_ids), Job.worker_id == worker_id, Job.status == "running")
            .values(status="queued", worker_id=None, lease_expires_at=None,
                    attempt=case((Job.attempt > 0, Job.attempt - 1), else_=0)
                    if refund_attempt else Job.attempt)
            .execution_options(**_NO_UPDATE_SYNC)
        )
