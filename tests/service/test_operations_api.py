"""Health, readiness, Prometheus metrics, request ids and JSON logs."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from service.observability import JsonFormatter, request_id_var
from tests.service.api_helpers import assert_problem, create_dataset, job_body, json_log, raw_asgi

pytestmark = pytest.mark.anyio


class FakeSupervisor:
    def __init__(self, healthy: bool) -> None:
        self.healthy, self.wakes = healthy, 0

    def is_healthy(self) -> bool:
        return self.healthy

    def wake(self) -> None:
        self.wakes += 1


async def test_healthz_is_ok(api: httpx.AsyncClient) -> None:
    response = await api.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_readyz_reports_each_check(api: httpx.AsyncClient) -> None:
    response = await api.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "workers": "disabled",
    }


async def test_readyz_is_503_when_migrations_are_behind(
    api: httpx.AsyncClient, app: FastAPI
) -> None:
    with app.state.database.write() as session:
        session.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    problem = assert_problem(await api.get("/readyz"), 503, "migrations")
    assert problem["checks"]["migrations"] == "failing"


async def test_readyz_is_503_when_workers_are_down(api: httpx.AsyncClient, app: FastAPI) -> None:
    app.state.supervisor = FakeSupervisor(healthy=False)
    try:
        assert_problem(await api.get("/readyz"), 503, "workers")
    finally:
        app.state.supervisor = None


async def test_submitting_a_job_wakes_the_supervisor(api: httpx.AsyncClient, app: FastAPI) -> None:
    dataset = await create_dataset(api)
    app.state.supervisor = supervisor = FakeSupervisor(healthy=True)
    try:
        job = (await api.post("/v1/jobs", json=job_body(dataset["id"]))).json()
        assert supervisor.wakes == 1
        await api.post(f"/v1/jobs/{job['id']}/cancel")
        assert supervisor.wakes == 2
    finally:
        app.state.supervisor = None


async def test_metrics_count_requests_by_route_template_and_jobs_by_status(
    api: httpx.AsyncClient,
) -> None:
    dataset = await create_dataset(api)
    await api.post("/v1/jobs", json=job_body(dataset["id"]))
    await api.get("/v1/datasets/deadbeef")
    response = await api.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    body = response.text
    template = 'route="/v1/datasets/{dataset_id}",status="404"'
    assert f'feedforward_http_requests_total{{method="GET",{template}}} 1.0' in body
    assert "deadbeef" not in body
    assert 'feedforward_jobs{status="queued"} 1.0' in body
    assert 'feedforward_jobs{status="running"} 0.0' in body
    assert "feedforward_epochs_trained_total 0.0" in body
    assert (
        'feedforward_http_request_duration_seconds_count{method="POST",route="/v1/jobs"} 1.0'
        in body
    )


async def test_request_id_is_echoed_or_generated(api: httpx.AsyncClient) -> None:
    echoed = await api.get("/healthz", headers={"X-Request-ID": "client-id-42"})
    assert echoed.headers["x-request-id"] == "client-id-42"
    generated = await api.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert generated.headers["x-request-id"] != "bad id\twith spaces"
    assert len(generated.headers["x-request-id"]) == 32
    assert "app;dur=" in generated.headers["server-timing"]


async def test_a_request_id_with_a_trailing_newline_is_replaced(app: FastAPI) -> None:
    """re's "$" matches before a final newline: "abc\n" passed the check and was echoed."""
    for sent, echoed in ((b"abc\n", False), (b"abc", True)):
        _, headers = await raw_asgi(app, "GET", "/healthz", [(b"x-request-id", sent)])
        assert (dict(headers)[b"x-request-id"] == sent) is echoed


@pytest.fixture
def access_log() -> Iterator[io.StringIO]:
    with json_log("service.access") as stream:
        yield stream


async def test_access_log_is_json_with_request_id_and_no_credentials(
    api: httpx.AsyncClient, access_log: io.StringIO
) -> None:
    await api.get("/v1/jobs", headers={"X-Request-ID": "trace-1", "Authorization": "Bearer s3cret"})
    lines = [json.loads(line) for line in access_log.getvalue().splitlines()]
    entries = [e for e in lines if e.get("request_id") == "trace-1"]
    assert len(entries) == 1, lines
    entry = entries[0]
    assert entry["route"] == "/v1/jobs" and entry["status"] == 200 and entry["method"] == "GET"
    assert entry["duration_ms"] >= 0
    assert "s3cret" not in access_log.getvalue()


def test_json_formatter_includes_the_current_request_id_and_exceptions() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed %s", ("x",), exc_info)
    token = request_id_var.set("abc")
    try:
        entry = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert entry["message"] == "failed x" and entry["request_id"] == "abc"
    assert entry["level"] == "ERROR" and "ValueError: boom" in entry["exception"]
