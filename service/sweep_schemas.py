"""Request and response bodies of /v1/sweeps (hyperparameter sweeps: one job per point)."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from service.schemas import ClosedBody, JobCreate, JobStatus, MetricsRow, Timestamp

__all__ = ["SweepCreate", "SweepJobOut", "SweepMetric", "SweepOut"]

SweepMetric = Literal["val_accuracy", "val_loss"]

GRID_EXAMPLE = {"optimizer.learning_rate": [0.1, 0.01], "batch_size": [32, 128]}
POINTS_EXAMPLE = [{"network.layers.0.units": 32, "l2": 0.0}, {"network.layers.0.units": 128}]


class SweepCreate(ClosedBody):
    """A base job body and either a grid (every combination) or a list of points.

    Keys of the grid and of each point are dotted paths into the job body
    (`optimizer.learning_rate`, `network.layers.0.units` — a number indexes a list); each value
    replaces what sits there. Every point becomes one job, validated and limited exactly like
    `POST /v1/jobs`; either all jobs are created or none. Without a `seed` in the base, one seed
    is drawn for the whole sweep, so that points differ only by their overrides (sweep `seed` to
    vary it).
    """

    base: JobCreate = Field(description="A job body, as for POST /v1/jobs.")
    grid: dict[str, list[Any]] | None = Field(
        None,
        description="Dotted path → list of values; one job per combination.",
        examples=[GRID_EXAMPLE],
    )
    points: list[dict[str, Any]] | None = Field(
        None,
        description="Override objects (dotted path → value); one job each.",
        examples=[POINTS_EXAMPLE],
    )

    @field_validator("grid", "points")
    @classmethod
    def _plain_small_values(cls, value: Any) -> Any:
        """Values are free-form JSON until each point is validated as a job. Every point copies
        its values, so one large value times a long list would be copied per point (a 6 MB value
        × 100 seeds took 4.5 GB); NaN and Infinity (which Python's JSON parser accepts) must not
        reach the database; and nesting is bounded so that nothing recurses without end."""
        if value is not None:
            for override in value.values() if isinstance(value, dict) else value:
                _check_override(override)
        return value


MAX_OVERRIDE_DEPTH = 16  # a job body nests 5 deep (network.layers.0.activation.beta)
MAX_OVERRIDE_BYTES = 65_536  # as JSON: room for hundreds of layers in one network.layers value


def _check_override(value: Any) -> None:
    """One grid list or point object: bounded depth and size, finite numbers (iteratively)."""
    stack, size = [(value, 0)], 0
    while stack:
        node, depth = stack.pop()
        if depth > MAX_OVERRIDE_DEPTH:
            raise ValueError(f"values nest deeper than {MAX_OVERRIDE_DEPTH} levels")
        if isinstance(node, float) and not math.isfinite(node):
            raise ValueError("NaN and Infinity are not numbers here; use finite values")
        if isinstance(node, dict):
            stack.extend((item, depth + 1) for item in node.values())
            size += sum(len(key) for key in node)
        elif isinstance(node, list):
            stack.extend((item, depth + 1) for item in node)
        elif isinstance(node, str):
            size += len(node)
        size += 8
        if size > MAX_OVERRIDE_BYTES:
            raise ValueError(f"a sweep value is larger than {MAX_OVERRIDE_BYTES} bytes; every "
                             "point copies its values, so sweep small values")


class SweepJobOut(BaseModel):
    id: str = Field(description="The job's id (GET /v1/jobs/{id} has the rest).")
    status: JobStatus
    overrides: dict[str, Any] = Field(description="This point's values, by dotted path.")
    epoch: int = Field(description="Last completed epoch.")
    epochs: int
    best: float | None = Field(description="The best value of the sweep's metric over all epochs.")
    best_epoch: int | None = Field(description="The epoch that reached `best`.")
    metrics: MetricsRow | None = Field(description="The latest epoch's metrics.")
    model_id: str | None = Field(description="The trained model, when succeeded.")
    error: str | None = Field(description="What went wrong, when failed.")


class SweepOut(BaseModel):
    id: str
    dataset_id: str
    base: dict[str, Any]
    grid: dict[str, list[Any]] | None
    points: list[dict[str, Any]] | None
    metric: SweepMetric = Field(
        description="val_accuracy (higher is better) for classification, val_loss (lower is "
        "better) otherwise."
    )
    status_counts: dict[str, int] = Field(description="Number of jobs in each status.")
    jobs: list[SweepJobOut] = Field(description="Best first; jobs without the metric come last.")
    created_at: Timestamp
