"""/healthz (process up), /readyz (can serve and train), /metrics (Prometheus).

Health and readiness are public (probes carry no keys and they reveal nothing but "ok");
metrics need a key like every other route.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from service.auth import current_owner
from service.migrate import current_revision
from service.openapi import error_responses
from service.problems import problem_response

__all__ = ["router"]

router = APIRouter(tags=["operations"])
CheckResult = Literal["ok", "failing", "disabled"]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    checks: dict[str, CheckResult]


@router.get("/healthz", operation_id="healthz")
def healthz() -> Health:
    """The process is up (public, for load balancers and HEALTHCHECK)."""
    return Health()


def _checks(request: Request) -> dict[str, CheckResult]:
    state = request.app.state
    checks: dict[str, CheckResult] = {}
    try:
        with state.database.read() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
        at_head = current_revision(state.database.engine) == state.head_revision
        checks["migrations"] = "ok" if at_head else "failing"
    except Exception:  # readiness reports failure; it never raises
        checks["database"] = checks["migrations"] = "failing"
    supervisor = state.supervisor
    checks["workers"] = (
        "disabled" if supervisor is None else ("ok" if supervisor.is_healthy() else "failing")
    )
    return checks


@router.get(
    "/readyz",
    operation_id="readyz",
    response_model=Readiness,
    responses={503: error_responses(503)[503]},
)
def readyz(request: Request) -> Readiness | Response:
    """Ready when the database answers, migrations are at head and workers are up; else 503."""
    checks = _checks(request)
    if "failing" in checks.values():
        failing = sorted(name for name, result in checks.items() if result == "failing")
        return problem_response(
            503,
            slug="not-ready",
            detail=f"not ready: {', '.join(failing)} failing",
            checks=checks,
        )
    return Readiness(checks=checks)


@router.get(
    "/metrics",
    operation_id="metrics",
    dependencies=[Depends(current_owner)],
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
            "description": "Prometheus text exposition format.",
        },
        **error_responses(),
    },
)
def metrics(request: Request) -> Response:
    """Prometheus metrics: requests and latencies by route, jobs by status, epochs trained."""
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
