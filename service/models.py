"""SQLAlchemy 2 models. The schema exists only through Alembic migrations in migrations/.

Every row that a client can see has an `owner` (the API-key owner that created it, "public" when
authentication is off); reads filter on it so that other owners get 404.

Big binary payloads (dataset arrays, checkpoints, weights) live in their own tables so that listing
rows never loads them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, get_args

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service.schemas import JobStatus

__all__ = [
    "ACTIVE_STATUSES",
    "JOB_STATUSES",
    "TERMINAL_STATUSES",
    "Base",
    "Checkpoint",
    "Dataset",
    "DatasetBlob",
    "EpochRecord",
    "IdempotencyRecord",
    "Job",
    "Model",
    "ModelWeights",
    "Sweep",
    "new_id",
    "utcnow",
]

JOB_STATUSES: tuple[JobStatus, ...] = get_args(JobStatus)
ACTIVE_STATUSES: tuple[JobStatus, ...] = ("queued", "running")
TERMINAL_STATUSES = frozenset(JOB_STATUSES) - frozenset(ACTIVE_STATUSES)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> str:
    """Opaque server-generated id: 32 lowercase hex characters."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


Timestamp = DateTime(timezone=True)
Id = String(32)


class DatasetBlob(Base):
    """Dataset arrays, stored once per content hash (SHA-256 over the canonical npz bytes)."""

    __tablename__ = "dataset_blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    arrays: Mapped[bytes] = mapped_column(LargeBinary)  # npz with X and y, allow_pickle=False
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Dataset(Base):
    __tablename__ = "datasets"
    id: Mapped[str] = mapped_column(Id, primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    name: Mapped[str] = mapped_column(String(256))
    task: Mapped[str] = mapped_column(String(16))  # classification | regression
    n_samples: Mapped[int] = mapped_column(Integer)
    n_features: Mapped[int] = mapped_column(Integer)
    n_targets: Mapped[int] = mapped_column(Integer, default=1)
    feature_names: Mapped[list[Any]] = mapped_column(JSON)
    target_name: Mapped[str | None] = mapped_column(String(256))
    classes: Mapped[list[Any] | None] = mapped_column(JSON)  # original labels, index = class id
    # NULL once deleted: the blob is freed; the row stays (finished jobs and models refer to it).
    sha256: Mapped[str | None] = mapped_column(ForeignKey("dataset_blobs.sha256"), index=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, index=True)
    deleted_at: Mapped[datetime | None] = mapped_column(Timestamp)


class Sweep(Base):
    __tablename__ = "sweeps"
    id: Mapped[str] = mapped_column(Id, primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    base: Mapped[dict[str, Any]] = mapped_column(JSON)
    grid: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    points: Mapped[list[Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Job(Base):
    """A training job; status moves queued → running → succeeded | failed | cancelled."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_created_at", "status", "created_at"),)
    id: Mapped[str] = mapped_column(Id, primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"), index=True)
    validation_dataset_id: Mapped[str | None] = mapped_column(ForeignKey("datasets.id"))
    sweep_id: Mapped[str | None] = mapped_column(ForeignKey("sweeps.id"), index=True)
    overrides: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)  # the normalised job body, seed filled in
    status: Mapped[str] = mapped_column(String(16), default="queued")
    epoch: Mapped[int] = mapped_column(Integer, default=0)  # last completed epoch
    epochs: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # latest metrics row
    error: Mapped[str | None] = mapped_column(Text)
    failure_reason: Mapped[str | None] = mapped_column(String(32))
    stop_reason: Mapped[str | None] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker_id: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(Timestamp)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)


class EpochRecord(Base):
    """One finished epoch: its metrics row and per-layer diagnostics, committed as it completes."""

    __tablename__ = "job_epochs"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    train_loss: Mapped[float | None] = mapped_column(Float)
    train_accuracy: Mapped[float | None] = mapped_column(Float)
    val_loss: Mapped[float | None] = mapped_column(Float)
    val_accuracy: Mapped[float | None] = mapped_column(Float)
    learning_rate: Mapped[float] = mapped_column(Float)
    seconds: Mapped[float] = mapped_column(Float)
    layers: Mapped[list[Any]] = mapped_column(JSON)  # per-layer diagnostics
    findings: Mapped[list[Any]] = mapped_column(JSON)


class Checkpoint(Base):
    """A job's latest resumable state (weights, optimizer, RNG, epoch), replaced every epoch."""

    __tablename__ = "checkpoints"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer)
    state: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Model(Base):
    """A trained model; written in the same transaction that marks its job succeeded."""

    __tablename__ = "models"
    id: Mapped[str] = mapped_column(Id, primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), unique=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"), index=True)
    network: Mapped[dict[str, Any]] = mapped_column(JSON)
    loss: Mapped[str] = mapped_column(String(32))
    task: Mapped[str] = mapped_column(String(16))
    n_features: Mapped[int] = mapped_column(Integer)
    parameter_count: Mapped[int] = mapped_column(BigInteger)
    classes: Mapped[list[Any] | None] = mapped_column(JSON)
    best_epoch: Mapped[int | None] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    findings: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, index=True)


class ModelWeights(Base):
    """engine.Model.to_bytes(): npz arrays + spec JSON, loadable with allow_pickle=False."""

    __tablename__ = "model_weights"
    model_id: Mapped[str] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[bytes] = mapped_column(LargeBinary)


class IdempotencyRecord(Base):
    """Idempotency-Key bookkeeping: same owner + key + request hash → the same resource."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("owner", "scope", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(String(64))  # e.g. "POST /v1/jobs"
    key: Mapped[str] = mapped_column(String(255))
    request_sha256: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(32))
    status_code: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
