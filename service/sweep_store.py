"""Creating a sweep (all its jobs in one transaction) and reading it back, best jobs first.

Each point goes through the same checks as `POST /v1/jobs` (dataset ownership, limits, fit to the
data, queue admission), so a sweep is exactly a batch of ordinary jobs that share a `sweep_id`; the
supervisor runs them like any other, in parallel across its workers. A point that fails its checks
fails the whole sweep, with the error located at that point, and nothing is created.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service import crud
from service.db import Database
from service.job_submission import SEED_BOUND, create_checked_job
from service.models import Dataset, EpochRecord, Job, Sweep
from service.problems import ApiError, Unprocessable, field_error
from service.schemas import JobCreate
from service.settings import Settings
from service.sweep_schemas import SweepCreate, SweepMetric
from service.sweeps import SweepError, SweepPoint, expand_sweep

__all__ = [
    "BestMetric",
    "SweepJobRow",
    "create_sweep",
    "dataset_task",
    "get_sweep",
    "metric_for_task",
    "status_counts",
    "sweep_jobs",
]


@dataclass(frozen=True)
class BestMetric:
    value: float
    epoch: int


@dataclass(frozen=True)
class SweepJobRow:
    job: Job
    model_id: str | None
    best: BestMetric | None


@dataclass(frozen=True)
class _Located:
    """A sweep point with where its errors go: `loc` prefix and a label for the detail."""

    point: SweepPoint
    loc: list[str | int]
    label: str


def create_sweep(database: Database, settings: Settings, *, owner: str, body: SweepCreate) -> Sweep:
    """Expand the sweep, check every point like a job submission, and queue them all (or none)."""
    base = body.base.model_dump(mode="json", exclude_unset=True)
    if base.get("seed") is None:  # one seed for every point: they differ only by their overrides
        base["seed"] = secrets.randbelow(SEED_BOUND)
    try:
        points = expand_sweep(
            base, grid=body.grid, points=body.points, max_points=settings.max_queued_jobs_per_owner
        )
    except SweepError as exc:
        raise Unprocessable(exc.detail, errors=exc.errors) from exc
    located = [_locate(body, points, index) for index in range(len(points))]
    bodies = [_validated(where) for where in located]
    with database.write() as session:
        sweep = Sweep(owner=owner, base=base, grid=body.grid, points=body.points)
        session.add(sweep)
        session.flush()
        for where, job_body in zip(located, bodies, strict=True):
            job = _checked_job(session, settings, owner, job_body, where)
            job.sweep_id, job.overrides = sweep.id, where.point.overrides
        session.flush()
        return sweep


def _locate(body: SweepCreate, points: Sequence[SweepPoint], index: int) -> _Located:
    point = points[index]
    loc: list[str | int] = ["body", "grid"] if body.grid is not None else ["body", "points", index]
    values = ", ".join(f"{path}={_short(value)}" for path, value in point.overrides.items())
    return _Located(point, loc, f"sweep point {index + 1} of {len(points)} ({values})")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _validated(where: _Located) -> JobCreate:
    """The point's job body, parsed like POST /v1/jobs parses one; 422 located at the point."""
    try:
        return JobCreate.model_validate(where.point.body)
    except ValidationError as exc:
        errors = [
            field_error([*where.loc, *error["loc"]], error["msg"], type=error["type"])
            for error in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        field = ".".join(str(part) for part in errors[0]["loc"][len(where.loc) :])
        detail = f"{where.label}: {field}: {errors[0]['msg']}"
        raise Unprocessable(detail, errors=errors) from exc


def _checked_job(
    session: Session, settings: Settings, owner: str, body: JobCreate, where: _Located
) -> Job:
    """One point through the job submission checks; its 404/422 is re-located at the point."""
    try:
        return create_checked_job(session, settings, owner=owner, body=body)
    except ApiError as exc:
        if exc.status not in (404, 422):  # 429 (queue full) and the like concern the whole sweep
            raise
        errors = [{**error, "loc": [*where.loc, *error["loc"][1:]]} for error in exc.errors or []]
        raise type(exc)(f"{where.label}: {exc.detail}", errors=errors or None) from exc


# --- reading ------------------------------------------------------------------------------------


def get_sweep(session: Session, *, owner: str, sweep_id: str) -> Sweep | None:
    return session.scalar(select(Sweep).where(Sweep.id == sweep_id, Sweep.owner == owner))


def metric_for_task(task: str) -> SweepMetric:
    """Classification sweeps rank by validation accuracy, others by validation loss."""
    return "val_accuracy" if task == "classification" else "val_loss"


def sweep_jobs(session: Session, *, sweep: Sweep, metric: SweepMetric) -> list[SweepJobRow]:
    """The sweep's jobs, best first by `metric` over all their epochs; jobs without it last."""
    query = (
        crud.jobs_with_model_ids().where(Job.sweep_id == sweep.id).order_by(Job.created_at, Job.id)
    )
    rows = session.execute(query).all()
    best = _best_per_job(session, [job.id for job, _ in rows], metric)
    ranked = [SweepJobRow(job, model_id, best.get(job.id)) for job, model_id in rows]
    return sorted(ranked, key=lambda row: _rank(row.best, metric))  # stable: creation order on ties


def _rank(best: BestMetric | None, metric: SweepMetric) -> tuple[bool, float]:
    if best is None:
        return (True, 0.0)
    return (False, -best.value if metric == "val_accuracy" else best.value)


def _best_per_job(
    session: Session, job_ids: Sequence[str], metric: SweepMetric
) -> dict[str, BestMetric]:
    """Each job's best metric value and the first epoch that reached it, in one query."""
    if not job_ids:
        return {}
    column = getattr(EpochRecord, metric)
    order = column.desc() if metric == "val_accuracy" else column.asc()
    ranked = (
        select(
            EpochRecord.job_id,
            EpochRecord.epoch,
            column.label("value"),
            func.row_number()
            .over(partition_by=EpochRecord.job_id, order_by=(order, EpochRecord.epoch))
            .label("place"),
        )
        .where(EpochRecord.job_id.in_(job_ids), column.is_not(None))
        .subquery()
    )
    rows = session.execute(
        select(ranked.c.job_id, ranked.c.epoch, ranked.c.value).where(ranked.c.place == 1)
    ).all()
    return {job_id: BestMetric(float(value), int(epoch)) for job_id, epoch, value in rows}


def dataset_task(session: Session, *, dataset_id: str) -> str:
    """The task of the sweep's dataset (also after the dataset was deleted: its row stays)."""
    return str(session.scalar(select(Dataset.task).where(Dataset.id == dataset_id)) or "regression")


def status_counts(rows: Sequence[SweepJobRow]) -> dict[str, int]:
    """How many jobs are in each status."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.job.status] = counts.get(row.job.status, 0) + 1
    return counts
