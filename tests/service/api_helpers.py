"""Helpers for in-process API tests: settings, an httpx client on the app, datasets, job bodies.

Imported by conftest.py (which exposes them as fixtures) and directly by test modules.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from fastapi import FastAPI
from sqlalchemy import func, select

from service.app import create_app
from service.db import Database
from service.models import Job
from service.observability import JsonFormatter
from service.settings import Settings
from tests.polling import eventually

BASE_URL = "http://localhost"
IRIS_LABELS = ("setosa", "versicolor", "virginica")


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a test: a fresh data dir, no workers unless asked, quiet logs, fast polling."""
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "workers": 0,
        "api_keys": "",
        "log_level": "WARNING",
        "heartbeat_seconds": 0.5,
        "lease_seconds": 5.0,
        "poll_seconds": 0.05,
        "blas_threads": 1,
    }
    return Settings(**(values | overrides))


@asynccontextmanager
async def running_app(app: FastAPI) -> AsyncIterator[FastAPI]:
    """Run the app's lifespan (migrations, supervisor) around the block; ASGITransport does not."""
    async with app.router.lifespan_context(app):
        yield app


def client(app: FastAPI, *, key: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL, headers=headers, timeout=60.0
    )


@asynccontextmanager
async def api_client(
    settings: Settings, *, key: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with running_app(app), client(app, key=key) as http:
        yield http


# --- data ----------------------------------------------------------------------------------------


def blobs(
    *, n_per_class: int = 20, n_features: int = 4, n_classes: int = 3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Well-separated Gaussian blobs, iris-sized by default: X (n, n_features), y class ids."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-5.0, 5.0, size=(n_classes, n_features))
    X = np.concatenate([c + rng.standard_normal((n_per_class, n_features)) for c in centers])
    y = np.repeat(np.arange(n_classes, dtype=np.int64), n_per_class)
    order = rng.permutation(len(y))
    return X[order], y[order]


def csv_bytes(X: np.ndarray, labels: Sequence[Any], *, target: str = "species") -> bytes:
    header = [f"f{i}" for i in range(X.shape[1])] + [target]
    lines = [",".join(header)]
    lines += [
        ",".join([*(f"{v:.6g}" for v in row), str(label)])
        for row, label in zip(X, labels, strict=True)
    ]
    return ("\n".join(lines) + "\n").encode()


def iris_like_csv(**kwargs: Any) -> bytes:
    """A CSV with four numeric features and string labels (like iris)."""
    X, y = blobs(**kwargs)
    return csv_bytes(X, [IRIS_LABELS[i] for i in y])


def strict_json(text: str | bytes) -> Any:
    """json.loads that fails on NaN/Infinity tokens (responses are strict JSON)."""

    def refuse(token: str) -> Any:
        raise ValueError(f"non-finite token {token} in a response")

    return json.loads(text, parse_constant=refuse)


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


async def upload_csv(
    http: httpx.AsyncClient, content: bytes, *, filename: str = "data.csv", **form: str
) -> httpx.Response:
    files = {"file": (filename, content, "text/csv")}
    return await http.post("/v1/datasets", files=files, data=form)


async def upload_json(
    http: httpx.AsyncClient, body: dict[str, Any], **headers: str
) -> httpx.Response:
    return await http.post(
        "/v1/datasets",
        content=json.dumps(body),
        headers={"Content-Type": "application/json", **headers},
    )


async def create_dataset(http: httpx.AsyncClient, **kwargs: Any) -> dict[str, Any]:
    """Upload an iris-like dataset; returns the dataset document."""
    response = await upload_csv(http, iris_like_csv(**kwargs), name="iris-like")
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def job_body(dataset_id: str, *, n_classes: int = 3, **overrides: Any) -> dict[str, Any]:
    """A small classification job: one tanh hidden layer and a softmax output."""
    body: dict[str, Any] = {
        "dataset_id": dataset_id,
        "network": {
            "layers": [
                {"type": "dense", "units": 8, "activation": "tanh"},
                {"type": "dense", "units": n_classes, "activation": "softmax"},
            ]
        },
        "optimizer": {"name": "sgd", "learning_rate": 0.1},
        "batch_size": 16,
        "epochs": 3,
        "seed": 0,
    }
    return body | overrides


def assert_problem(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    """The response is a problem document with this status whose detail mentions every word."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert {"type", "title", "status", "detail"} <= problem.keys()
    assert problem["status"] == status
    for word in words:
        assert word.lower() in problem["detail"].lower(), (word, problem["detail"])
    return problem  # type: ignore[no-any-return]


def job_count(database: Database) -> int:
    """How many job rows exist: submissions that fail their checks must leave none."""
    with database.read() as session:
        return int(session.scalar(select(func.count(Job.id))) or 0)


TERMINAL_STATUSES = ("succeeded", "failed", "cancelled")


async def finished_job(
    http: httpx.AsyncClient, job_id: str, timeout: float = 120.0
) -> dict[str, Any]:
    """Poll GET /v1/jobs/{id} until the job reaches a terminal status; the job document."""

    async def terminal() -> dict[str, Any] | None:
        job: dict[str, Any] = (await http.get(f"/v1/jobs/{job_id}")).json()
        return job if job["status"] in TERMINAL_STATUSES else None

    return await eventually(
        terminal, timeout=timeout, interval=0.05, message=f"job {job_id} to end"
    )


@contextmanager
def json_log(logger_name: str, level: int = logging.INFO) -> Iterator[io.StringIO]:
    """What `logger_name` logs meanwhile, as the service's JSON lines, each formatted as it is
    emitted (so the request id in context then is in it). Test settings keep loggers at WARNING."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(level)
    try:
        yield stream
    finally:
        logger.setLevel(previous)
        logger.removeHandler(handler)


async def raw_asgi(app: FastAPI, method: str, path: str, headers: list[tuple[bytes, bytes]],
                   body: bytes = b"") -> tuple[int, list[tuple[bytes, bytes]]]:
    """One request straight through the ASGI app, for headers an HTTP client would not send:
    (status, response headers)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5000),
             "headers": [(b"host", b"127.0.0.1"), *headers]}
    await app(scope, receive, send)
    start = next(message for message in sent if message["type"] == "http.response.start")
    return int(start["status"]), list(start.get("headers", []))
