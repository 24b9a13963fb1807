"""S3 and L1 on a stand-in app: the guards install_middleware adds, independent of the real routes.

Host allowlist (400), foreign Origin on state-changing requests (403), media types (415), body
limits with and without Content-Length (413) and security headers. The real app gets the same
checks in test_browser_proof.py.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse

from service.middleware import install_middleware
from service.problems import install_problem_handlers
from service.settings import Settings

JSON_LIMIT = 1024
UPLOAD_LIMIT = 64 * 1024


def stand_in_app(**settings: object) -> tuple[FastAPI, list[str]]:
    """Routes shaped like ours; `calls` records every handler that ran."""
    app = FastAPI()
    calls: list[str] = []
    install_problem_handlers(app)
    config = {"max_json_bytes": JSON_LIMIT, "max_upload_bytes": UPLOAD_LIMIT, **settings}
    install_middleware(app, Settings(**config))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        calls.append("healthz")
        return {"status": "ok"}

    @app.get("/v1/jobs")
    async def list_jobs() -> dict[str, list[str]]:
        calls.append("list")
        return {"items": []}

    @app.post("/v1/jobs")
    async def create_job(body: dict[str, object]) -> dict[str, int]:
        calls.append("create")
        return {"keys": len(body)}

    @app.post("/v1/jobs/{job_id}/cancel")
    async def cancel(job_id: str) -> dict[str, str]:
        calls.append("cancel")
        return {"id": job_id}

    @app.post("/v1/datasets")
    async def upload(request: Request) -> JSONResponse:
        calls.append("upload")
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return JSONResponse({"bytes": size}, status_code=201)

    return app, calls


def request(app: FastAPI, method: str, url: str, **kwargs: object) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8000") as c:
            return await c.request(method, url, **kwargs)  # type: ignore[arg-type]

    return asyncio.run(go())


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]


# --- Host ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["rebind.attacker.test", "evil.test:8000", "127.0.0.2", "", "0"])
def test_foreign_host_is_refused_before_any_handler(host):
    app, calls = stand_in_app()
    response = request(app, "GET", "/v1/jobs", headers={"Host": host})
    assert_problem(response, 400)
    assert "FEEDFORWARD_ALLOWED_HOSTS" in response.json()["detail"]
    assert calls == []


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:8000", "LOCALHOST.", "127.0.0.1:1", "[::1]:8000", "[::1]"]
)
def test_loopback_names_are_accepted(host):
    app, calls = stand_in_app()
    assert request(app, "GET", "/v1/jobs", headers={"Host": host}).status_code == 200


def test_bind_host_and_configured_hosts_are_accepted():
    app, _ = stand_in_app(host="10.1.2.3", allowed_hosts="api.example.com, other.test")
    for host in ("10.1.2.3:8000", "api.example.com", "OTHER.test:443"):
        assert request(app, "GET", "/v1/jobs", headers={"Host": host}).status_code == 200
    assert request(app, "GET", "/v1/jobs", headers={"Host": "example.com"}).status_code == 400


def test_health_probes_answer_whatever_the_host():
    app, _ = stand_in_app()
    assert request(app, "GET", "/healthz", headers={"Host": "10.0.0.7:8000"}).status_code == 200


# --- Origin and CORS ----------------------------------------------------------------------------


@pytest.mark.parametrize("origin", ["http://evil.test", "null", "http://localhost:9999"])
def test_cross_origin_post_is_refused(origin):
    app, calls = stand_in_app()
    response = request(app, "POST", "/v1/jobs", json={"a": 1}, headers={"Origin": origin})
    assert_problem(response, 403)
    assert calls == []


def test_cross_origin_post_without_body_is_refused_too():
    app, calls = stand_in_app()
    response = request(app, "POST", "/v1/jobs/abc/cancel", headers={"Origin": "http://evil.test"})
    assert_problem(response, 403)
    assert calls == []


def test_same_origin_post_from_the_docs_page_is_accepted():
    app, calls = stand_in_app()
    response = request(app, "POST", "/v1/jobs", json={"a": 1},
                       headers={"Origin": "http://localhost:8000"})  # fmt: skip
    assert response.status_code == 200
    assert calls == ["create"]


def test_no_cors_headers_unless_configured():
    app, _ = stand_in_app()
    response = request(app, "GET", "/v1/jobs", headers={"Origin": "http://evil.test"})
    assert response.status_code == 200
    assert not any(name.startswith("access-control-") for name in response.headers)
    preflight = request(app, "OPTIONS", "/v1/jobs", headers={
        "Origin": "http://evil.test", "Access-Control-Request-Method": "POST"})  # fmt: skip
    assert not any(name.startswith("access-control-") for name in preflight.headers)


def test_configured_cors_origin_may_post_and_gets_cors_headers():
    app, calls = stand_in_app(cors_origins="https://ui.example.com")
    origin = {"Origin": "https://ui.example.com"}
    response = request(app, "POST", "/v1/jobs", json={"a": 1}, headers=origin)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://ui.example.com"
    preflight = request(app, "OPTIONS", "/v1/jobs",
                        headers={**origin, "Access-Control-Request-Method": "POST"})  # fmt: skip
    assert preflight.status_code == 200
    other = request(app, "POST", "/v1/jobs", json={"a": 1}, headers={"Origin": "https://x.test"})
    assert other.status_code == 403


# --- media types ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
     "application/octet-stream", "application/python-pickle", "application/jsonx", None],
)  # fmt: skip
def test_json_routes_refuse_other_media_types(content_type):
    app, calls = stand_in_app()
    headers = {"Content-Type": content_type} if content_type else {}
    response = request(app, "POST", "/v1/jobs", content=b'{"a": 1}', headers=headers)
    assert_problem(response, 415)
    assert calls == []


def test_json_with_charset_is_accepted():
    app, calls = stand_in_app()
    response = request(app, "POST", "/v1/jobs", content=b'{"a": 1}',
                       headers={"Content-Type": "Application/JSON; charset=utf-8"})  # fmt: skip
    assert response.status_code == 200


def test_post_without_body_needs_no_media_type():
    app, calls = stand_in_app()
    assert request(app, "POST", "/v1/jobs/abc/cancel").status_code == 200


def test_upload_route_accepts_multipart_and_json_only():
    app, _ = stand_in_app()
    files = {"file": ("d.csv", b"a,t\n1,0\n", "text/csv")}
    assert request(app, "POST", "/v1/datasets", files=files).status_code == 201
    assert request(app, "POST", "/v1/datasets", json={"X": [[1]]}).status_code == 201
    response = request(app, "POST", "/v1/datasets", content=b"a,t\n1,0\n",
                       headers={"Content-Type": "text/csv"})  # fmt: skip
    assert_problem(response, 415)


# --- body limits ---------------------------------------------------------------------------------


def _json_of_size(size: int) -> bytes:
    body = json.dumps({"pad": ""}).encode()
    return json.dumps({"pad": "x" * (size - len(body))}).encode()


def test_json_body_at_the_limit_is_read():
    app, calls = stand_in_app()
    response = request(app, "POST", "/v1/jobs", content=_json_of_size(JSON_LIMIT),
                       headers={"Content-Type": "application/json"})  # fmt: skip
    assert response.status_code == 200


def test_json_body_over_the_limit_with_content_length_is_refused_unread():
    app, calls = stand_in_app()
    response = request(app, "POST", "/v1/jobs", content=_json_of_size(JSON_LIMIT + 1),
                       headers={"Content-Type": "application/json"})  # fmt: skip
    assert_problem(response, 413)
    assert str(JSON_LIMIT) in response.json()["detail"]
    assert calls == []


async def _chunks(total: int, chunk: int = 100):
    yield b'{"pad": "'
    for _ in range(total // chunk):
        yield b"x" * chunk
    yield b'"}'


def test_chunked_json_body_over_the_limit_is_refused():
    app, calls = stand_in_app()
    response = request(app, "POST", "/v1/jobs", content=_chunks(JSON_LIMIT * 4),
                       headers={"Content-Type": "application/json"})  # fmt: skip
    assert_problem(response, 413)
    assert calls == []  # FastAPI reads the body before the handler runs


def test_chunked_json_body_within_the_limit_reaches_the_handler_whole():
    app, calls = stand_in_app()
    response = request(app, "POST", "/v1/jobs", content=_chunks(JSON_LIMIT // 2),
                       headers={"Content-Type": "application/json"})  # fmt: skip
    assert response.status_code == 200 and response.json() == {"keys": 1}
    assert calls == ["create"]


def test_chunked_upload_over_the_upload_limit_is_refused_mid_stream():
    app, calls = stand_in_app()
    response = request(app, "POST", "/v1/datasets", content=_chunks(UPLOAD_LIMIT * 2, 4096),
                       headers={"Content-Type": "multipart/form-data; boundary=x"})  # fmt: skip
    assert_problem(response, 413)
    assert calls == ["upload"]


def test_upload_route_allows_the_upload_limit_for_multipart_only():
    app, _ = stand_in_app()
    big = b"a" * (JSON_LIMIT * 8)
    files = {"file": ("d.csv", big, "text/csv")}
    assert request(app, "POST", "/v1/datasets", files=files).json()["bytes"] > len(big)
    response = request(app, "POST", "/v1/datasets", content=big,
                       headers={"Content-Type": "application/json"})  # fmt: skip
    assert_problem(response, 413)
    detail = response.json()["detail"]  # says how to send it instead
    assert str(JSON_LIMIT) in detail and "multipart file" in detail and str(UPLOAD_LIMIT) in detail
    oversize_job = request(app, "POST", "/v1/jobs", content=big,
                           headers={"Content-Type": "application/json"})  # fmt: skip
    assert "multipart" not in oversize_job.json()["detail"]  # only uploads have another way


def test_declared_oversize_body_is_never_received():
    app, _ = stand_in_app()
    received: list[dict[str, object]] = []
    sent: list[dict[str, object]] = []
    scope = {
        "type": "http", "method": "POST", "path": "/v1/jobs", "raw_path": b"/v1/jobs",
        "query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1",
        "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5000),
        "headers": [(b"host", b"localhost"), (b"content-type", b"application/json"),
                    (b"content-length", str(10**12).encode())],
    }  # fmt: skip

    async def receive() -> dict[str, object]:
        received.append({})
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert received == []


# --- headers -------------------------------------------------------------------------------------


def test_security_headers_are_on_answers_and_refusals():
    app, _ = stand_in_app()
    for response in (
        request(app, "GET", "/v1/jobs"),
        request(app, "GET", "/v1/jobs", headers={"Host": "evil.test"}),
        request(app, "POST", "/v1/jobs", content=b"x", headers={"Content-Type": "text/plain"}),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"


def test_methods_a_path_does_not_serve_get_405_not_415():
    app, calls = stand_in_app()
    text = {"Content-Type": "text/plain"}
    assert request(app, "PUT", "/v1/jobs", content=b"x", headers=text).status_code == 405
    assert request(app, "POST", "/v1/nothing", content=b"x", headers=text).status_code == 404
    assert calls == []


def test_oversize_body_on_a_method_the_path_does_not_serve_gets_405_not_413():
    app, calls = stand_in_app()
    oversize, json_type = _json_of_size(JSON_LIMIT + 1), {"Content-Type": "application/json"}
    response = request(app, "PUT", "/v1/jobs", content=oversize, headers=json_type)
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "HEAD", "POST"}
    assert request(app, "POST", "/v1/jobs", content=oversize, headers=json_type).status_code == 413
    assert calls == []
