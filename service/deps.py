"""Typed FastAPI dependencies: the database, settings, pagination and lookup-or-404 per resource."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from engine.spec import MAX_EPOCHS
from service import crud
from service.auth import OwnerDep
from service.db import Database
from service.models import Dataset, Job, Model
from service.problems import NotFound, Unprocessable, field_error
from service.settings import Settings

__all__ = [
    "closed_query",
    "DatabaseDep",
    "DatasetDep",
    "EpochPageDep",
    "JobDep",
    "JobWithModelIdDep",
    "ModelDep",
    "PageDep",
    "RawBodyDep",
    "Pagination",
    "SettingsDep",
    "WakeSupervisorDep",
]

MAX_PAGE_SIZE = 1000
MAX_OFFSET = 1_000_000_000  # keeps OFFSET inside a 64-bit integer on every database


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_settings_from_app(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_supervisor_waker(request: Request) -> Callable[[], None]:
    """supervisor.wake, or a no-op when this process runs no workers (FEEDFORWARD_WORKERS=0)."""
    supervisor = request.app.state.supervisor
    return supervisor.wake if supervisor is not None else _no_op


def _no_op() -> None:
    """Nothing to wake."""


async def raw_body(request: Request) -> bytes:
    """The request body as bytes, for routes that validate big JSON bodies themselves."""
    return await request.body()


DatabaseDep = Annotated[Database, Depends(get_database)]
RawBodyDep = Annotated[bytes, Depends(raw_body)]
SettingsDep = Annotated[Settings, Depends(get_settings_from_app)]
WakeSupervisorDep = Annotated[Callable[[], None], Depends(get_supervisor_waker)]


@dataclass(frozen=True)
class Pagination:
    limit: int
    offset: int


async def pagination(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page.")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")] = 0,
) -> Pagination:
    return Pagination(limit=limit, offset=offset)


PageDep = Annotated[Pagination, Depends(pagination)]


async def epoch_pagination(
    settings: SettingsDep,
    limit: Annotated[int | None, Query(ge=1, le=MAX_EPOCHS, description="Epochs per page "
                                       "(default: FEEDFORWARD_MAX_EPOCHS, every epoch).")] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_EPOCHS, description="Epochs to skip.")] = 0,
) -> Pagination:
    """A job's rows come whole unless a page is asked for: no job has more than max_epochs."""
    return Pagination(limit=settings.max_epochs if limit is None else limit, offset=offset)


EpochPageDep = Annotated[Pagination, Depends(epoch_pagination)]


def closed_query(*names: str) -> Any:
    """A route dependency refusing query parameters the route does not take (`?limt=5` is a 422)."""
    allowed = frozenset(names)

    async def check(request: Request, _owner: OwnerDep) -> None:  # after authentication: 401 first
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            raise Unprocessable(
                f"unknown query parameter(s) {unknown}; this route takes {sorted(allowed)}",
                errors=[
                    field_error(["query", name], "unknown query parameter") for name in unknown
                ],
            )

    return Depends(check)


IdPath = Annotated[str, Path(min_length=1, max_length=64)]


def dataset_or_404(dataset_id: IdPath, owner: OwnerDep, database: DatabaseDep) -> Dataset:
    with database.read() as session:
        dataset = crud.get_dataset(session, owner=owner, dataset_id=dataset_id)
    if dataset is None:
        raise NotFound(f"dataset {dataset_id!r} does not exist")
    return dataset


def job_or_404(job_id: IdPath, owner: OwnerDep, database: DatabaseDep) -> Job:
    with database.read() as session:
        job = crud.get_job(session, owner=owner, job_id=job_id)
    if job is None:
        raise _job_not_found(job_id)
    return job


def job_with_model_id_or_404(
    job_id: IdPath, owner: OwnerDep, database: DatabaseDep
) -> tuple[Job, str | None]:
    """The job and its model id (None unless it succeeded), in one query."""
    with database.read() as session:
        row = crud.get_job_with_model_id(session, owner=owner, job_id=job_id)
    if row is None:
        raise _job_not_found(job_id)
    return row


def _job_not_found(job_id: str) -> NotFound:
    return NotFound(f"job {job_id!r} does not exist")


def _model_row(database: Database, owner: str, model_id: str) -> Model | None:
    with database.read() as session:
        return crud.get_model(session, owner=owner, model_id=model_id)


async def model_or_404(model_id: IdPath, owner: OwnerDep, request: Request) -> Model:
    """Published models never change: a cached row answers without the database."""
    # Few dependencies on purpose: predictions are the hot path, and each one costs per request.
    rows = request.app.state.model_cache.rows
    model: Model | None = rows.get(model_id)
    if model is None:
        model = await run_in_threadpool(_model_row, request.app.state.database, owner, model_id)
        if model is not None:
            rows.put(model_id, model)
    if model is None or model.owner != owner:
        raise NotFound(f"model {model_id!r} does not exist")
    return model


DatasetDep = Annotated[Dataset, Depends(dataset_or_404)]
JobDep = Annotated[Job, Depends(job_or_404)]
JobWithModelIdDep = Annotated[tuple[Job, str | None], Depends(job_with_model_id_or_404)]
ModelDep = Annotated[Model, Depends(model_or_404)]
