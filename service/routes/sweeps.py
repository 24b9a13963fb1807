"""/v1/sweeps: queue one job per point of a hyperparameter grid or list, read them ranked."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from starlette.concurrency import run_in_threadpool

from service import sweep_store
from service.auth import OwnerDep
from service.db import Database
from service.deps import DatabaseDep, IdPath, SettingsDep, WakeSupervisorDep
from service.models import Sweep
from service.openapi import error_responses, links
from service.problems import NotFound
from service.sweep_schemas import SweepCreate, SweepJobOut, SweepOut
from service.views import finite_json, metrics_out

__all__ = ["router"]

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"])


def sweep_or_404(sweep_id: IdPath, owner: OwnerDep, database: DatabaseDep) -> Sweep:
    with database.read() as session:
        sweep = sweep_store.get_sweep(session, owner=owner, sweep_id=sweep_id)
    if sweep is None:
        raise NotFound(f"sweep {sweep_id!r} does not exist")
    return sweep


SweepDep = Annotated[Sweep, Depends(sweep_or_404)]


@router.post(
    "",
    status_code=202,
    operation_id="create_sweep",
    responses={
        202: {
            "description": "The queued sweep; Location names it.",
            "links": links(GetSweep=("get_sweep", "sweep_id")),
        },
        **error_responses(404, 422, 429),
    },
)
async def create_sweep(
    body: SweepCreate,
    response: Response,
    owner: OwnerDep,
    database: DatabaseDep,
    settings: SettingsDep,
    wake_supervisor: WakeSupervisorDep,
) -> SweepOut:
    """Queue one job per grid combination or listed point; all of them, or none (422/429)."""
    sweep = await run_in_threadpool(
        sweep_store.create_sweep, database, settings, owner=owner, body=body
    )
    wake_supervisor()
    response.headers["Location"] = f"/v1/sweeps/{sweep.id}"
    return await run_in_threadpool(_sweep_out, database, sweep)


@router.get("/{sweep_id}", operation_id="get_sweep", responses=error_responses(404, 422))
def get_sweep(sweep: SweepDep, database: DatabaseDep) -> SweepOut:
    """The sweep's jobs with their overrides, status and best validation metric, best first."""
    return _sweep_out(database, sweep)


def _sweep_out(database: Database, sweep: Sweep) -> SweepOut:
    dataset_id = str(sweep.base["dataset_id"])
    with database.read() as session:
        task = sweep_store.dataset_task(session, dataset_id=dataset_id)
        metric = sweep_store.metric_for_task(task)
        rows = sweep_store.sweep_jobs(session, sweep=sweep, metric=metric)
    jobs = [
        SweepJobOut(
            id=row.job.id,
            status=row.job.status,
            overrides=row.job.overrides or {},
            epoch=row.job.epoch,
            epochs=row.job.epochs,
            best=row.best.value if row.best else None,
            best_epoch=row.best.epoch if row.best else None,
            metrics=metrics_out(row.job.metrics),
            model_id=row.model_id,
            error=row.job.error,
        )
        for row in rows
    ]
    return SweepOut(
        id=sweep.id,
        dataset_id=dataset_id,
        base=sweep.base,
        grid=finite_json(sweep.grid),
        points=finite_json(sweep.points),
        metric=metric,
        status_counts=sweep_store.status_counts(rows),
        jobs=jobs,
        created_at=sweep.created_at,
    )
