"""S8 / A5: every error is an RFC 9457 problem document; none leaks a traceback, a path or SQL."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError

from service.app import create_app
from service.observability import request_id_var
from service.problems import PayloadTooLarge, Unprocessable, UnsupportedMediaType
from tests.service.api_helpers import (
    BASE_URL,
    assert_problem,
    client,
    create_dataset,
    job_body,
    json_log,
    make_settings,
    raw_asgi,
    running_app,
    strict_json,
)

pytestmark = pytest.mark.anyio
LEAKS = ("Traceback", "/work/", "site-packages", "SELECT", "sqlite", 'File "')


@pytest.fixture
async def raising_api(app: FastAPI, api: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sees the 500 response instead of the re-raised exception."""

    def explode() -> None:
        raise OperationalError("SELECT secret FROM /work/main/data/feedforward.db", {}, Exception())

    app.add_api_route("/test-only/explode", explode)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield http


async def test_unexpected_errors_are_opaque_500_problems(raising_api: httpx.AsyncClient) -> None:
    response = await raising_api.get("/test-only/explode")
    problem = assert_problem(response, 500)
    assert len(problem["error_id"]) == 32 and problem["error_id"] in problem["detail"]
    assert not [leak for leak in LEAKS if leak in response.text]


async def test_a_500_carries_the_request_id_in_its_header_and_its_log_line(
    raising_api: httpx.AsyncClient,
) -> None:
    with json_log("service.problems", logging.ERROR) as log:
        response = await raising_api.get("/test-only/explode", headers={"X-Request-ID": "t-500"})
    assert_problem(response, 500)
    assert response.headers["x-request-id"] == "t-500"  # the one response a client must quote
    (line,) = [json.loads(text) for text in log.getvalue().splitlines()]
    assert line["level"] == "ERROR" and line["request_id"] == "t-500"
    assert request_id_var.get() is None


async def test_unknown_route_and_method_are_problems(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get("/v1/nothing-here"), 404)
    response = await api.put("/v1/jobs")
    assert_problem(response, 405)
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "POST"}


async def test_validation_errors_name_each_field_without_echoing_input(
    api: httpx.AsyncClient,
) -> None:
    dataset = await create_dataset(api)
    body = job_body(dataset["id"], epochs="many", batch_size=0)
    body["network"]["layers"][0]["activation"] = "no_such_activation"
    problem = assert_problem(await api.post("/v1/jobs", json=body), 422)
    locations = {tuple(error["loc"]) for error in problem["errors"]}
    assert ("body", "epochs") in locations and ("body", "batch_size") in locations
    assert any("no_such_activation" in error["msg"] for error in problem["errors"])
    assert all(set(error) <= {"loc", "msg", "type"} for error in problem["errors"])


async def test_nan_in_a_json_body_is_422_not_500(api: httpx.AsyncClient) -> None:
    dataset = await create_dataset(api)
    text = json.dumps(job_body(dataset["id"])).replace(
        '"learning_rate": 0.1', '"learning_rate": NaN'
    )
    response = await api.post(
        "/v1/jobs", content=text, headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 422)
    strict_json(response.text)


async def test_huge_offsets_and_limits_are_422(api: httpx.AsyncClient) -> None:
    for params in ({"offset": 2**70}, {"limit": 0}, {"limit": 10**6}, {"offset": -1}):
        assert_problem(await api.get("/v1/jobs", params=params), 422)


async def test_overlong_ids_are_422_and_traversal_ids_404(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get("/v1/jobs/" + "a" * 65), 422)
    for bad in ("..%2F..%2Fetc%2Fpasswd", "%00", "..\\..\\x"):
        response = await api.get(f"/v1/datasets/{bad}")
        assert response.status_code == 404
        assert "root:" not in response.text


async def test_unknown_query_parameters_are_422(api: httpx.AsyncClient) -> None:
    problem = assert_problem(await api.get("/v1/jobs", params={"limt": 5}), 422, "limt")
    assert problem["errors"][0]["loc"] == ["query", "limt"]
    assert (await api.get("/v1/jobs", params={"limit": 5, "status": "queued"})).status_code == 200


async def test_trailing_slashes_are_404_not_redirects(api: httpx.AsyncClient) -> None:
    for path in ("/v1/models/", "/v1/models//", "/v1/jobs/"):
        assert_problem(await api.get(path), 404)


async def test_each_status_has_one_title_whichever_layer_answers(api: httpx.AsyncClient) -> None:
    dataset = await create_dataset(api)
    unprocessable = [
        await api.post("/v1/jobs", json=job_body(dataset["id"], epochs="many")),  # FastAPI's
        await api.get("/v1/jobs", params={"limt": 5}),  # a route's Unprocessable
        await api.post("/v1/datasets", json={"X": [[1.0]], "y": [1], "name": 5}),  # the envelope
        await api.post("/v1/datasets", json={"X": [["a"]], "y": [1]}),  # a DatasetError
    ]
    titles = {assert_problem(response, 422)["title"] for response in unprocessable}
    assert titles == {Unprocessable.title} == {"Unprocessable Content"}
    unsupported = [
        await api.post("/v1/jobs", content=b"x", headers={"Content-Type": "text/plain"}),  # guard
        await api.post(
            "/v1/datasets", files={"file": ("d.xlsx", b"x", "application/vnd.ms-excel")}
        ),
    ]
    titles = {assert_problem(response, 415)["title"] for response in unsupported}
    assert titles == {UnsupportedMediaType.title}


async def test_the_body_limit_answers_with_the_413_title_and_type(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, max_json_bytes=64))
    async with running_app(app), client(app) as http:
        response = await http.post("/v1/jobs", json={"padding": "x" * 100})
    problem = assert_problem(response, 413, "64 bytes")
    assert problem["title"] == PayloadTooLarge.title == "Content Too Large"
    assert problem["type"].endswith(":" + PayloadTooLarge.slug)


async def test_a_content_length_that_is_no_ascii_number_is_no_500(tmp_path: Path) -> None:
    """Raw ASGI (an HTTP client would refuse to send it): "²" passes str.isdigit, not int()."""
    app = create_app(make_settings(tmp_path))
    async with running_app(app):
        status, _ = await raw_asgi(app, "POST", "/v1/jobs", [
            (b"content-type", b"application/json"), (b"content-length", b"\xb2")], b"{}")
    assert 400 <= status < 500


async def test_a_bad_json_dataset_envelope_is_located_like_any_validation_error(
    api: httpx.AsyncClient,
) -> None:
    response = await api.post("/v1/datasets", json={"X": [[1.0]], "y": [1], "task": "ranking"})
    problem = assert_problem(response, 422, "body.task")
    assert problem["type"].endswith(":validation-error")
    assert [error["loc"] for error in problem["errors"]] == [["body", "task"]]
    assert all(set(error) == {"loc", "msg", "type"} for error in problem["errors"])
