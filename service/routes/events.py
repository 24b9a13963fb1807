"""GET /v1/jobs/{id}/events: a job's progress as server-sent events.

`event: epoch` (data: the metrics row) per finished epoch and `event: status` (data: the job, as
GET /v1/jobs/{id} returns it) per status change; the stream ends after the terminal status. The
route polls the database (a short read transaction in a worker thread, every POLL_SECONDS), so it
works whichever process or replica runs the job. A client that connects late, or reconnects with
`Last-Event-ID: <epoch>`, first receives the epochs it has not seen.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header
from sqlalchemy import select
from sse_starlette import EventSourceResponse, ServerSentEvent

from engine.spec import MAX_EPOCHS
from service import crud
from service.db import Database
from service.deps import DatabaseDep, JobDep
from service.models import TERMINAL_STATUSES, EpochRecord, Job
from service.openapi import error_responses
from service.views import job_out, metrics_row

__all__ = ["POLL_SECONDS", "router"]

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

POLL_SECONDS = 0.25  # progress shows within a quarter second; one indexed read per poll
PING_SECONDS = 15  # keeps proxies from closing an idle stream during a long epoch

EVENTS_DESCRIPTION = """\
`text/event-stream`. `event: epoch` with `id: <epoch>` and the metrics row as data, once per
finished epoch (epochs already done come first); `event: status` with the job as data, once per
status change. The stream ends after the job's terminal status (succeeded, failed, cancelled).
"""
# One server-sent event, as OpenAPI 3.2 describes a text/event-stream item (Schemathesis checks it).
EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": ["epoch", "status"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
        "id": {"type": "string"},
    },
    "required": ["event", "data"],
}


@dataclass(frozen=True)
class _Snapshot:
    epochs: list[dict[str, Any]]
    job: dict[str, Any]


def _read_snapshot(database: Database, job_id: str, after_epoch: int) -> _Snapshot:
    """The epochs after `after_epoch` and the job, from one consistent read transaction."""
    with database.read() as session:
        job, model_id = session.execute(
            crud.jobs_with_model_ids().where(Job.id == job_id)
        ).one()
        records = session.scalars(
            select(EpochRecord)
            .where(EpochRecord.job_id == job_id, EpochRecord.epoch > after_epoch)
            .order_by(EpochRecord.epoch)
        ).all()
        epochs = [metrics_row(record).model_dump(mode="json") for record in records]
        return _Snapshot(epochs, job_out(job, model_id).model_dump(mode="json"))


def _data(value: dict[str, Any]) -> str:
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


async def _job_events(database: Database, job_id: str, after_epoch: int) -> AsyncIterator[Any]:
    """Per poll: a new non-terminal status, then the new epochs, then a terminal status — the
    order they happened in. A job seen queued and then finished ran in between, unseen: its
    `running` is sent (the job as it was then) before its epochs, so no status change is lost."""
    last_status = None
    while True:
        snapshot = await anyio.to_thread.run_sync(_read_snapshot, database, job_id, after_epoch)
        job, status = snapshot.job, snapshot.job["status"]
        if status != last_status and status not in TERMINAL_STATUSES:
            last_status = status
            yield ServerSentEvent(data=_data(job), event="status")
        elif last_status == "queued" and status in TERMINAL_STATUSES and job["started_at"]:
            last_status = "running"
            yield ServerSentEvent(data=_data(_while_running(job)), event="status")
        for row in snapshot.epochs:
            after_epoch = row["epoch"]
            yield ServerSentEvent(data=_data(row), event="epoch", id=str(after_epoch))
        if status != last_status:
            last_status = status
            yield ServerSentEvent(data=_data(job), event="status")
        if status in TERMINAL_STATUSES:
            return
        await anyio.sleep(POLL_SECONDS)


def _while_running(job: dict[str, Any]) -> dict[str, Any]:
    """A finished job as it was while running: no outcome yet, no epoch reported."""
    outcome = ("finished_at", "model_id", "error", "failure_reason", "stop_reason", "metrics")
    return {**job, "status": "running", "epoch": 0, **dict.fromkeys(outcome)}


def _last_epoch_seen(last_event_id: str | None) -> int:
    """The epoch a reconnecting client saw last; 0 when the header is absent or not a plain
    decimal (str.isdigit alone accepts "²", which int() refuses). No job has more epochs than a
    spec allows, so a larger id (even beyond SQLite's 64-bit integers) means "seen them all"."""
    if last_event_id is not None and last_event_id.isascii() and last_event_id.isdigit():
        return min(int(last_event_id), MAX_EPOCHS)
    return 0


@router.get(
    "/{job_id}/events",
    operation_id="get_job_events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": EVENTS_DESCRIPTION,
            "content": {"text/event-stream": {"schema": EVENT_SCHEMA}},
        },
        **error_responses(404, 422),
    },
)
async def job_events(
    job: JobDep,
    database: DatabaseDep,
    last_event_id: Annotated[
        str | None, Header(max_length=20, description="Resume after this epoch.")
    ] = None,
) -> EventSourceResponse:
    """Stream a job's epochs and status changes as server-sent events until it finishes."""
    events = _job_events(database, job.id, _last_epoch_seen(last_event_id))
    return EventSourceResponse(events, ping=PING_SECONDS)
