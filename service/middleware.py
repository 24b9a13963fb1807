"""Security and limits middleware, installed once by create_app, outermost first:

    SecurityHeaders   every response: nosniff, X-Frame-Options DENY, no referrer
    KeylessLoopback   403 on a non-loopback address while no API key is configured
    HostAllowlist     400 for a Host that is not ours (DNS rebinding)
    CORSMiddleware    only when FEEDFORWARD_CORS_ORIGINS is set
    OriginGuard       403 for state-changing requests from a foreign Origin
    MediaTypeGuard    415 unless the body is application/json (uploads: also multipart/form-data)
    BodyLimit         413 past max_json_bytes (uploads: max_upload_bytes), also for chunked bodies

MediaTypeGuard and BodyLimit judge only requests a route serves: for any other method or path the
router's 405 (with `Allow`) or 404 wins over 415 and 413.

All of them are pure ASGI (no BaseHTTPMiddleware), so no body is ever buffered here. Multipart part
counts and sizes are bounded by the upload route's `request.form(max_files=1, max_fields=…,
max_part_size=…)` call and python-multipart's per-part header limits.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from service.body_limit import BodyLimit
from service.request_guards import (
    HostAllowlist,
    KeylessLoopback,
    MediaTypeGuard,
    OriginGuard,
    SecurityHeaders,
)
from service.settings import Settings

__all__ = ["JSON_MEDIA_TYPE", "UPLOAD_MEDIA_TYPES", "UPLOAD_ROUTE", "install_middleware"]

JSON_MEDIA_TYPE = "application/json"
UPLOAD_ROUTE = ("POST", "/v1/datasets")
UPLOAD_MEDIA_TYPES = frozenset({"multipart/form-data"})
CORS_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key"]
CORS_EXPOSED = ["Location", "Retry-After"]


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """Add the guards; Starlette runs the middleware added last first."""
    app.add_middleware(
        BodyLimit,
        router=app.router,
        default_bytes=settings.max_json_bytes,
        upload_bytes=settings.max_upload_bytes,
        upload_routes={UPLOAD_ROUTE},
        upload_media_types=UPLOAD_MEDIA_TYPES,
    )
    app.add_middleware(
        MediaTypeGuard,
        router=app.router,
        default={JSON_MEDIA_TYPE},
        by_route={UPLOAD_ROUTE: {JSON_MEDIA_TYPE, *UPLOAD_MEDIA_TYPES}},
    )
    cors_origins = _split(settings.cors_origins)
    app.add_middleware(OriginGuard, cors_origins=cors_origins)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=CORS_HEADERS,
            expose_headers=CORS_EXPOSED,
        )
    app.add_middleware(HostAllowlist, allowed=[settings.host, *_split(settings.allowed_hosts)])
    if not settings.api_key_owners:
        app.add_middleware(KeylessLoopback)
    app.add_middleware(SecurityHeaders)
