"""JSON logs with a request id, and Prometheus metrics.

Every request gets an id (the client's `X-Request-ID` when it is a short token, else a new one),
echoed in the response and attached to every log line written while the request runs. Metrics:
request counts and latencies by route template (never the raw path, which would explode label
cardinality), jobs by status and epochs trained (read from the database at scrape time, so they are
right whichever process trained). Headers are never logged, so API keys never reach the logs.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.db import Database
from service.models import JOB_STATUSES, EpochRecord, Job
from service.problems import unexpected_error_response

__all__ = [
    "REQUEST_ID_HEADER",
    "JsonFormatter",
    "ObservabilityMiddleware",
    "build_registry",
    "configure_logging",
    "request_id_var",
    "uvicorn_log_config",
]

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")  # nothing that could forge a log line
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
access_logger = logging.getLogger("service.access")
_NOT_EXTRA = {"message", "asctime", "color_message"}  # color_message: uvicorn's ANSI-coloured copy
_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | _NOT_EXTRA


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


JsonFormatter.converter = time.gmtime


def configure_logging(level: str) -> None:
    """JSON lines on stderr for the service's loggers (idempotent)."""
    logger = logging.getLogger("service")
    logger.setLevel(level.upper())
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.propagate = False


def uvicorn_log_config(level: str) -> dict[str, Any]:
    """uvicorn's own loggers as JSON too (its access log is off: the middleware logs requests)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            name: {"handlers": ["stderr"], "level": level.upper(), "propagate": False}
            for name in ("uvicorn", "uvicorn.error")
        },
    }


class _DatabaseCollector(Collector):
    """Jobs by status and epochs trained, counted in the database at scrape time."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def collect(self) -> list[Metric]:
        jobs = GaugeMetricFamily("feedforward_jobs", "Jobs by status.", labels=["status"])
        epochs = CounterMetricFamily("feedforward_epochs_trained", "Epochs trained by all jobs.")
        with self.database.read() as session:
            counts = dict(
                session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
            )
            total_epochs = session.scalar(select(func.count()).select_from(EpochRecord)) or 0
        for status in JOB_STATUSES:
            jobs.add_metric([status], float(counts.get(status, 0)))
        epochs.add_metric([], float(total_epochs))
        return [jobs, epochs]


def build_registry(database: Database) -> tuple[CollectorRegistry, Counter, Histogram]:
    """A registry per app (tests build many apps in one process), with the request metrics."""
    registry = CollectorRegistry()
    requests = Counter(
        "feedforward_http_requests",
        "HTTP requests by route template and status.",
        ["method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "feedforward_http_request_duration_seconds",
        "Time to the response's first byte, by route template.",
        ["method", "route"],
        registry=registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    )
    registry.register(_DatabaseCollector(database))
    return registry, requests, latency


class ObservabilityMiddleware:
    """Pure ASGI (no body buffering, so streams and SSE pass through): id, metrics, access log."""

    def __init__(self, app: ASGIApp, *, requests: Counter, latency: Histogram) -> None:
        self.app, self.requests, self.latency = app, requests, latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status, first_byte = 500, None

        async def send_with_id(message: Message) -> None:
            nonlocal status, first_byte
            if message["type"] == "http.response.start":
                status, first_byte = message["status"], time.perf_counter() - started
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"server-timing", f"app;dur={first_byte * 1000:.2f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Starlette answers unhandled errors in ServerErrorMiddleware, outside this one: the
            # 500 would go out without the request id, and be logged after it was reset. Answer
            # here instead, while the id is still ours (nothing to do once a response started).
            if first_byte is not None:
                raise
            response = unexpected_error_response(scope.get("method", ""), scope.get("path", ""),
                                                 exc)
            await response(scope, receive, send_with_id)
        finally:
            seconds = first_byte if first_byte is not None else time.perf_counter() - started
            self._record(scope, status, seconds)
            request_id_var.reset(token)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "")
        self.requests.labels(method, template, str(status)).inc()
        self.latency.labels(method, template).observe(seconds)
        access_logger.info(
            "%s %s %s",
            method,
            template,
            status,
            extra={
                "method": method,
                "route": template,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
            },
        )


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _VALID_REQUEST_ID.fullmatch(text) else None  # "$" allows a final \n
    return None
