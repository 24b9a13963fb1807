"""/v1/jobs: submit a training job, list and read jobs, per-epoch metrics, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from service import crud
from service.auth import OwnerDep
from service.deps import (
    DatabaseDep,
    EpochPageDep,
    JobDep,
    JobWithModelIdDep,
    PageDep,
    SettingsDep,
    WakeSupervisorDep,
    closed_query,
)
from service.idempotency import IdempotencyKeyHeader
from service.job_submission import submit_job
from service.openapi import error_responses, links
from service.problems import Conflict
from service.schemas import JobCreate, JobOut, JobStatus, MetricsRow, Page
from service.views import job_out, metrics_row

__all__ = ["router"]

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.post(
    "",
    status_code=202,
    operation_id="create_job",
    responses={
        202: {
            "description": "The queued job; Location names it.",
            "links": links(
                GetJob=("get_job", "job_id"),
                CancelJob=("cancel_job", "job_id"),
                GetJobMetrics=("get_job_metrics", "job_id"),
            ),
        },
        **error_responses(404, 409, 422, 429),
    },
)
async def create_job(
    body: JobCreate,
    response: Response,
    owner: OwnerDep,
    database: DatabaseDep,
    settings: SettingsDep,
    wake_supervisor: WakeSupervisorDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JobOut:
    """Queue a training job; 422 when the network does not fit the data or the limits."""
    job, model_id = await run_in_threadpool(
        submit_job, database, settings, owner=owner, body=body, idempotency_key=idempotency_key
    )
    wake_supervisor()
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return job_out(job, model_id=model_id)


@router.get(
    "",
    operation_id="list_jobs",
    responses=error_responses(422),
    dependencies=[closed_query("limit", "offset", "status")],
)
def list_jobs(
    owner: OwnerDep,
    database: DatabaseDep,
    page: PageDep,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this status.")] = None,
) -> Page[JobOut]:
    """List your jobs, newest first."""
    with database.read() as session:
        rows, total = crud.list_jobs(
            session, owner=owner, status=status, limit=page.limit, offset=page.offset
        )
    items = [job_out(job, model_id) for job, model_id in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{job_id}", operation_id="get_job", responses=error_responses(404, 422))
async def get_job(row: JobWithModelIdDep) -> JobOut:
    """Read a job: status, progress, latest metrics, error, model id."""
    job, model_id = row
    return job_out(job, model_id)


@router.get(
    "/{job_id}/metrics",
    operation_id="get_job_metrics",
    responses=error_responses(404, 422),
    dependencies=[closed_query("limit", "offset")],
)
def get_job_metrics(
    job: JobDep, database: DatabaseDep, page: EpochPageDep
) -> Page[MetricsRow]:
    """One metrics row per finished epoch, in epoch order."""
    with database.read() as session:
        records = crud.epoch_records(session, job_id=job.id, limit=page.limit, offset=page.offset)
        total = crud.count_epoch_records(session, job_id=job.id)
    return Page(
        items=[metrics_row(r) for r in records], total=total, limit=page.limit, offset=page.offset
    )


@router.post(
    "/{job_id}/cancel",
    status_code=202,
    operation_id="cancel_job",
    responses=error_responses(404, 409, 422),
)
def cancel_job(
    job: JobDep, owner: OwnerDep, database: DatabaseDep, wake_supervisor: WakeSupervisorDep
) -> JobOut:
    """Cancel a job: queued jobs end at once, running ones within one epoch; 409 if finished."""
    with database.write() as session:
        outcome = crud.cancel_job(session, job_id=job.id)
        current = crud.get_job(session, owner=owner, job_id=job.id)
    if outcome == "finished":
        raise Conflict(
            f"job {job.id!r} has already finished ({current.status if current else '?'})"
        )
    wake_supervisor()
    assert current is not None
    # Cancelled or flagged while queued or running, so it has no model: a model is published in
    # the transaction that marks its job succeeded (service.jobs.store.publish_model).
    return job_out(current, model_id=None)
