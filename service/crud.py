"""Every read and write of the API, as keyword-only functions over a session, scoped by owner.

Functions take the session they work in; the caller chooses `Database.read()` or `.write()` and so
the transaction. Nothing here commits. Rows of another owner, and deleted datasets, are invisible:
lookups return None and lists omit them, so the routes answer 404.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.orm import Session

from service.models import (
    ACTIVE_STATUSES,
    Dataset,
    DatasetBlob,
    EpochRecord,
    IdempotencyRecord,
    Job,
    Model,
    ModelWeights,
    utcnow,
)

__all__ = [
    "cancel_job",
    "cancel_queued_job",
    "count_active_jobs",
    "count_epoch_records",
    "count_queued_jobs",
    "create_job",
    "dataset_arrays",
    "delete_dataset_unless_used",
    "epoch_records",
    "find_idempotency_record",
    "get_dataset",
    "get_job",
    "get_job_with_model_id",
    "get_model",
    "jobs_with_model_ids",
    "list_datasets",
    "list_jobs",
    "list_models",
    "model_weights",
    "request_cancel",
    "save_idempotency_record",
    "soft_delete_dataset",
    "store_dataset",
]


def _page(
    session: Session, query: Select[*tuple[Any, ...]], *, limit: int, offset: int
) -> tuple[list[Any], int]:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = session.execute(query.limit(limit).offset(offset)).all()
    return [row[0] if len(row) == 1 else tuple(row) for row in rows], int(total or 0)


# --- datasets ----------------------------------------------------------------------------------


def get_dataset(
    session: Session, *, owner: str, dataset_id: str, for_update: bool = False
) -> Dataset | None:
    query = select(Dataset).where(
        Dataset.id == dataset_id, Dataset.owner == owner, Dataset.deleted_at.is_(None)
    )
    return session.scalar(query.with_for_update() if for_update else query)


def list_datasets(
    session: Session, *, owner: str, limit: int, offset: int
) -> tuple[list[Dataset], int]:
    query = (
        select(Dataset)
        .where(Dataset.owner == owner, Dataset.deleted_at.is_(None))
        .order_by(Dataset.created_at.desc(), Dataset.id.desc())
    )
    return _page(session, query, limit=limit, offset=offset)


def store_dataset(
    session: Session, *, owner: str, name: str, arrays: bytes, sha256: str, meta: dict[str, Any]
) -> Dataset:
    """Insert the blob unless its hash is stored already, then the dataset row pointing at it."""
    if session.get(DatasetBlob, sha256) is None:
        session.add(DatasetBlob(sha256=sha256, arrays=arrays, size_bytes=len(arrays)))
        session.flush()
    dataset = Dataset(owner=owner, name=name, sha256=sha256, **meta)
    session.add(dataset)
    session.flush()
    return dataset


def dataset_arrays(session: Session, *, sha256: str) -> bytes | None:
    return session.scalar(select(DatasetBlob.arrays).where(DatasetBlob.sha256 == sha256))


def count_active_jobs(session: Session, *, dataset_id: str) -> int:
    """Queued or running jobs that train or validate on the dataset."""
    query = select(func.count(Job.id)).where(
        Job.status.in_(ACTIVE_STATUSES),
        (Job.dataset_id == dataset_id) | (Job.validation_dataset_id == dataset_id),
    )
    return int(session.scalar(query) or 0)


def delete_dataset_unless_used(session: Session, *, owner: str, dataset_id: str) -> int:
    """Delete the dataset unless queued or running jobs use it; returns how many do (0: deleted)."""
    dataset = get_dataset(session, owner=owner, dataset_id=dataset_id, for_update=True)
    if dataset is None:
        return 0
    active = count_active_jobs(session, dataset_id=dataset_id)
    if not active:
        soft_delete_dataset(session, dataset=dataset)
    return active


def soft_delete_dataset(session: Session, *, dataset: Dataset) -> None:
    """Hide the dataset and free its blob when no other dataset shares it.

    The row stays: finished jobs and models keep referring to it by id.
    """
    sha256 = dataset.sha256
    dataset.deleted_at = utcnow()
    dataset.sha256 = None
    session.flush()
    if sha256 is not None:
        # Lock the blob before counting its users: on PostgreSQL an upload of the same bytes that
        # commits meanwhile would otherwise be missed by the count and break the DELETE's foreign
        # key (a 500). SQLite's BEGIN IMMEDIATE already serialises the two; this is a no-op there.
        session.execute(select(DatasetBlob.sha256).where(DatasetBlob.sha256 == sha256)
                        .with_for_update())
        still_used = session.scalar(select(func.count(Dataset.id)).where(Dataset.sha256 == sha256))
        if not still_used:
            session.execute(delete(DatasetBlob).where(DatasetBlob.sha256 == sha256))


# --- jobs --------------------------------------------------------------------------------------


def get_job(session: Session, *, owner: str, job_id: str) -> Job | None:
    return session.scalar(select(Job).where(Job.id == job_id, Job.owner == owner))


def jobs_with_model_ids() -> Select[Job, str]:
    """Jobs, each with its model id: None (the outer join's, whatever the type says) unless the job
    succeeded, as a model is published in the transaction that marks its job succeeded."""
    return select(Job, Model.id).outerjoin(Model, Model.job_id == Job.id)


def get_job_with_model_id(
    session: Session, *, owner: str, job_id: str
) -> tuple[Job, str | None] | None:
    query = jobs_with_model_ids().where(Job.id == job_id, Job.owner == owner)
    row = session.execute(query).one_or_none()
    return None if row is None else (row[0], row[1])


def list_jobs(
    session: Session, *, owner: str, status: str | None, limit: int, offset: int
) -> tuple[list[tuple[Job, str | None]], int]:
    """Jobs newest first, each with its model id (None unless succeeded)."""
    query = (
        jobs_with_model_ids()
        .where(Job.owner == owner)
        .order_by(Job.created_at.desc(), Job.id.desc())
    )
    if status is not None:
        query = query.where(Job.status == status)
    return _page(session, query, limit=limit, offset=offset)


def count_queued_jobs(session: Session, *, owner: str) -> int:
    query = select(func.count(Job.id)).where(Job.owner == owner, Job.status == "queued")
    return int(session.scalar(query) or 0)


def create_job(
    session: Session,
    *,
    owner: str,
    spec: dict[str, Any],
    dataset_id: str,
    validation_dataset_id: str | None,
    epochs: int,
) -> Job:
    job = Job(
        owner=owner,
        spec=spec,
        dataset_id=dataset_id,
        validation_dataset_id=validation_dataset_id,
        epochs=epochs,
        status="queued",
        epoch=0,
        attempt=0,
        cancel_requested=False,
    )
    session.add(job)
    session.flush()
    return job


def cancel_queued_job(session: Session, *, job_id: str) -> bool:
    """queued → cancelled in one UPDATE, so a worker claiming the job meanwhile cannot win too."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "queued")
        .values(status="cancelled", stop_reason="cancelled", finished_at=utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def request_cancel(session: Session, *, job_id: str) -> bool:
    """Flag a running job; its worker stops at the next mini-batch and the supervisor ends it."""
    result = session.execute(
        update(Job).where(Job.id == job_id, Job.status == "running").values(cancel_requested=True)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def cancel_job(session: Session, *, job_id: str) -> Literal["cancelled", "requested", "finished"]:
    """Cancel a queued job at once, flag a running one; "finished" when it had already ended."""
    if cancel_queued_job(session, job_id=job_id):
        return "cancelled"
    if request_cancel(session, job_id=job_id):
        return "requested"
    return "finished"


def epoch_records(
    session: Session, *, job_id: str, limit: int | None = None, offset: int = 0
) -> Sequence[EpochRecord]:
    query = select(EpochRecord).where(EpochRecord.job_id == job_id).order_by(EpochRecord.epoch)
    if limit is not None:
        query = query.limit(limit).offset(offset)
    return session.scalars(query).all()


def count_epoch_records(session: Session, *, job_id: str) -> int:
    query = select(func.count()).select_from(EpochRecord).where(EpochRecord.job_id == job_id)
    return int(session.scalar(query) or 0)


# --- models ------------------------------------------------------------------------------------


def get_model(session: Session, *, owner: str, model_id: str) -> Model | None:
    return session.scalar(select(Model).where(Model.id == model_id, Model.owner == owner))


def list_models(
    session: Session, *, owner: str, limit: int, offset: int
) -> tuple[list[Model], int]:
    query = (
        select(Model).where(Model.owner == owner).order_by(Model.created_at.desc(), Model.id.desc())
    )
    return _page(session, query, limit=limit, offset=offset)


def model_weights(session: Session, *, model_id: str) -> bytes | None:
    return session.scalar(select(ModelWeights.data).where(ModelWeights.model_id == model_id))


# --- idempotency -------------------------------------------------------------------------------


def find_idempotency_record(
    session: Session, *, owner: str, scope: str, key: str
) -> IdempotencyRecord | None:
    return session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.owner == owner,
            IdempotencyRecord.scope == scope,
            IdempotencyRecord.key == key,
        )
    )


def forget_idempotency_records(session: Session, *, owner: str, before: datetime) -> None:
    """Drop the owner's keys recorded before `before` (they are then new keys again)."""
    session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.owner == owner,
                                                    IdempotencyRecord.created_at < before))


def save_idempotency_record(
    session: Session,
    *,
    owner: str,
    scope: str,
    key: str,
    request_sha256: str,
    resource_id: str,
    status_code: int,
) -> None:
    session.add(
        IdempotencyRecord(
            owner=owner,
            scope=scope,
            key=key,
            request_sha256=request_sha256,
            resource_id=resource_id,
            status_code=status_code,
        )
    )
    session.flush()
