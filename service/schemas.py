"""Request and response bodies of the REST API (the OpenAPI schema is generated from these).

Request bodies are closed (unknown keys are errors) and reject NaN/Infinity; the job body extends
the engine's TrainingSpec so that the network spec is validated once, by the engine's own schema.
Model-related bodies live in service/model_schemas.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from engine.spec import TrainingSpec
from service.dataset_targets import Task

__all__ = [
    "DatasetJsonBody",
    "DatasetOut",
    "FieldErrorOut",
    "JobCreate",
    "JobOut",
    "JobStatus",
    "MetricsRow",
    "Page",
    "Problem",
    "ResourceId",
    "Task",
    "Timestamp",
    "ValidationDataset",
    "ValidationSplit",
]

T = TypeVar("T")
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
ResourceId = Annotated[str, Field(min_length=1, max_length=64, description="An opaque id.")]


def _as_utc(value: datetime) -> datetime:
    # SQLite returns naive datetimes; every timestamp we store is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Timestamp = Annotated[datetime, AfterValidator(_as_utc), Field(description="RFC 3339, UTC.")]
Label = str | int | float


class ClosedBody(BaseModel):
    """Base of every request body: unknown keys are errors, floats must be finite."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# --- common ------------------------------------------------------------------------------------


class FieldErrorOut(BaseModel):
    loc: list[str | int] = Field(
        description="Where the problem is, e.g. ['body', 'network', 'layers', 0]."
    )
    msg: str
    type: str | None = None
    row: int | None = Field(None, description="1-based data row, for dataset errors.")
    column: str | None = Field(None, description="Column name, for dataset errors.")


class Problem(BaseModel):
    """An RFC 9457 problem document (media type application/problem+json)."""

    type: str = Field(examples=["urn:feedforward:problem:not-found"])
    title: str
    status: int
    detail: str
    errors: list[FieldErrorOut] | None = Field(
        None, description="Each bad field (validation errors)."
    )
    error_id: str | None = Field(None, description="Opaque id of a server error, for bug reports.")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="Number of items matching the query, over all pages.")
    limit: int
    offset: int


# --- datasets ----------------------------------------------------------------------------------


class DatasetJsonBody(ClosedBody):
    """A dataset sent as JSON instead of a file upload."""

    # A valid body for the docs, and for Schemathesis to create datasets (random bodies never are).
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "xor", "X": [[0, 0], [0, 1], [1, 0], [1, 1]], "y": [0, 1, 1, 0]}]
        }
    )

    name: str | None = Field(None, max_length=256)
    X: list[list[float]] = Field(description="Rows of numeric features, (n_samples, n_features).")
    y: list[Label] | list[list[float]] = Field(
        description="Class labels or target values, one per row (a row of values per sample for "
        "several targets)."
    )
    task: Task | None = Field(None, description="Inferred from y when absent.")
    feature_names: list[str] | None = Field(None, description="One name per column of X.")


class DatasetOut(BaseModel):
    id: str
    name: str
    task: Task
    n_samples: int
    n_features: int
    n_targets: int
    feature_names: list[str]
    target_name: str | None
    classes: list[Label] | None = Field(
        description="Original labels; index = class id (classification)."
    )
    sha256: str = Field(description="SHA-256 of the canonical stored arrays.")
    created_at: Timestamp


# --- jobs --------------------------------------------------------------------------------------


class ValidationSplit(ClosedBody):
    split: float = Field(
        gt=0.0, lt=1.0, description="Fraction of the rows held out for validation."
    )


class ValidationDataset(ClosedBody):
    dataset_id: ResourceId


class JobCreate(TrainingSpec):
    """A training job: the engine's TrainingSpec plus the data to train on."""

    dataset_id: ResourceId
    validation: ValidationSplit | ValidationDataset | None = Field(
        None, description='{"split": 0.2}, {"dataset_id": "…"} or null for no validation set.'
    )

    def training_spec(self) -> TrainingSpec:
        """The engine's part of the body."""
        fields = set(TrainingSpec.model_fields)
        return TrainingSpec.model_validate(self.model_dump(include=fields))


class MetricsRow(BaseModel):
    epoch: int
    train_loss: float | None
    train_accuracy: float | None = Field(None, description="Classification only.")
    val_loss: float | None = None
    val_accuracy: float | None = None
    learning_rate: float | None = None
    seconds: float | None = None


class JobOut(BaseModel):
    id: str
    status: JobStatus
    dataset_id: str
    validation_dataset_id: str | None
    epoch: int = Field(description="Last completed epoch (0 before the first).")
    epochs: int
    metrics: MetricsRow | None = Field(description="The latest epoch's metrics.")
    error: str | None = Field(description="What went wrong and what to try, when failed.")
    failure_reason: str | None = Field(
        None, description="diverged, timed_out, worker_lost, resource_exhausted or error."
    )
    stop_reason: str | None = Field(
        None, description="patience, max_epochs, cancelled or diverged."
    )
    cancel_requested: bool
    attempt: int = Field(description="How many times the job has been started.")
    model_id: str | None = Field(description="The trained model, when succeeded.")
    sweep_id: str | None = None
    spec: dict[str, Any] = Field(
        description="The normalised job body, with the seed that was used."
    )
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
