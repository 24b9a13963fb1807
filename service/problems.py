"""Errors as RFC 9457 problem details (`application/problem+json`), mapped in one place.

    ApiError                     status 500 unless a subclass says otherwise
    ├── BadRequest               400
    ├── Unauthorized             401 (+ WWW-Authenticate: Bearer)
    ├── Forbidden                403
    ├── NotFound                 404
    ├── Conflict                 409
    ├── PayloadTooLarge          413
    ├── UnsupportedMediaType     415
    ├── Unprocessable            422 (+ an `errors` list naming each bad field)
    ├── TooManyRequests          429 (+ Retry-After)
    └── ServiceUnavailable       503

Routes raise these; `install_problem_handlers` maps them, FastAPI's RequestValidationError,
Starlette's HTTPException, engine errors and dataset errors to problem documents. Anything else
becomes a 500 that carries an opaque error id (logged with the traceback) and never the traceback,
a path or SQL text.

The classes' `status`/`title`/`slug` are the one table of titles: every problem document, the
middleware's included, takes its title from it (`problem_response`), and its type from the class's
slug unless a more specific one is given (e.g. "invalid-dataset" for a 422). Titles are RFC 9110's.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from engine.errors import DataError, SpecError
from engine.spec import ACTIVATION_ALIASES
from service.dataset_errors import DatasetError

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "ApiError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "Unprocessable",
    "UnsupportedMediaType",
    "field_error",
    "install_problem_handlers",
    "problem_response",
    "problem_title",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:feedforward:problem:"
logger = logging.getLogger("service.problems")


class ApiError(Exception):
    status = 500
    slug = "internal-error"
    title = "Internal Server Error"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors is not None else None
        self.headers = headers or {}


class BadRequest(ApiError):
    status, slug, title = 400, "bad-request", "Bad Request"


class Unauthorized(ApiError):
    status, slug, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(ApiError):
    status, slug, title = 404, "not-found", "Not Found"


class Conflict(ApiError):
    status, slug, title = 409, "conflict", "Conflict"


class PayloadTooLarge(ApiError):
    status, slug, title = 413, "payload-too-large", "Content Too Large"


class UnsupportedMediaType(ApiError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported Media Type"


class Unprocessable(ApiError):
    status, slug, title = 422, "validation-error", "Unprocessable Content"


class TooManyRequests(ApiError):
    status, slug, title = 429, "too-many-requests", "Too Many Requests"

    def __init__(self, detail: str, *, retry_after_seconds: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_seconds)})


class ServiceUnavailable(ApiError):
    status, slug, title = 503, "service-unavailable", "Service Unavailable"


_BY_STATUS: dict[int, type[ApiError]] = {
    error.status: error
    for error in (
        ApiError,
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        Unprocessable,
        TooManyRequests,
        ServiceUnavailable,
    )
}


def problem_title(status: int) -> str:
    """The one title of a status: its ApiError class's, else the HTTP reason phrase."""
    error = _BY_STATUS.get(status)
    return error.title if error is not None else HTTPStatus(status).phrase


def _status_slug(status: int) -> str | None:
    error = _BY_STATUS.get(status)
    return error.slug if error is not None else None


def field_error(loc: Sequence[str | int], msg: str, **extra: Any) -> dict[str, Any]:
    """One entry of a problem's `errors` list: where (`loc`) and what (`msg`)."""
    return {"loc": list(loc), "msg": msg, **extra}


def problem_response(
    status: int,
    *,
    detail: str,
    slug: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """A problem document titled by `problem_title(status)`; its type is `slug`, else the status's
    own slug (about:blank for a status without an ApiError class)."""
    slug = slug or _status_slug(status)
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + slug if slug else "about:blank",
        "title": problem_title(status),
        "status": status,
        "detail": detail,
        **extra,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return problem_response(
        exc.status,
        detail=exc.detail,
        slug=exc.slug,
        errors=exc.errors,
        headers=exc.headers,
    )


def _clean_validation_error(error: dict[str, Any], body: Any) -> dict[str, Any]:
    # Only loc/msg/type: pydantic's `input` and `ctx` may echo NaN, huge bodies or exceptions.
    loc = [str(part) if not isinstance(part, int) else part for part in error["loc"]]
    kind = str(error.get("type", "value_error"))
    if loc[:1] == ["body"]:
        # a missing field's name ends its loc: never mistake it for a tag
        tail = loc[-1:] if kind == "missing" else []
        loc = ["body", *_client_path(loc[1 : len(loc) - len(tail)], body), *tail]
    return field_error(loc, str(error["msg"]), type=kind)


def _client_path(loc: list[str | int], body: Any) -> list[str | int]:
    """`loc` as a path into the body the client sent, without the union tags pydantic inserts
    (…, "layers", 0, "dense", "units" → …, "layers", 0, "units"): a tag is a step that is not a
    key of the object at that point but its "type" (dense when omitted) or "name" (an alias's
    canonical name included: "sigmoid" is validated as "logistic")."""
    path: list[str | int] = []
    node = body
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part not in node and part in (
            node.get("type", "dense"), node.get("name"), _canonical(node.get("name"))
        ):
            continue
        path.append(part)
        if isinstance(node, dict) and isinstance(part, str):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return path


def _canonical(name: Any) -> str | None:
    alias = ACTIVATION_ALIASES.get(name) if isinstance(name, str) else None
    return None if alias is None else str(alias["name"])


def _request_validation(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [_clean_validation_error(dict(error), exc.body) for error in exc.errors()]
    first = errors[0] if errors else field_error([], "invalid request")
    where = ".".join(str(part) for part in first["loc"])
    detail: str = f"{where}: {first['msg']}" if where else str(first["msg"])
    if len(errors) > 1:
        detail += f" (and {len(errors) - 1} more)"
    return problem_response(422, detail=detail, errors=errors)


def _allowed_methods(request: Request) -> str:
    # Starlette's Allow names the methods of the first route on the path only; list them all.
    path = request.scope["path"]
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods |= route.methods or set()
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else problem_title(exc.status_code)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return problem_response(exc.status_code, detail=detail, headers=headers)


def _engine_error(_request: Request, exc: Exception) -> Response:
    errors = [field_error(["body"], str(exc))]
    return problem_response(422, detail=str(exc), errors=errors)


def _dataset_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DatasetError)
    status = int(getattr(exc, "status", 422))  # 415 for UnsupportedDatasetFormat
    slug = "invalid-dataset" if status == 422 else "unsupported-dataset-format"
    return problem_response(
        status,
        detail=exc.detail,
        slug=slug,
        errors=list(exc.errors),
    )


def _unexpected(request: Request, exc: Exception) -> Response:
    return unexpected_error_response(request.method, request.url.path, exc)


def unexpected_error_response(method: str, path: str, exc: BaseException) -> Response:
    """The 500 problem for an error nothing else handled, logged with a fresh error id."""
    error_id = uuid.uuid4().hex
    logger.error("unhandled error %s on %s %s", error_id, method, path, exc_info=exc)
    return problem_response(
        500,
        error_id=error_id,
        detail=f"an unexpected error occurred; quote error id {error_id} when reporting it",
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Map every error the app can raise to a problem document."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(SpecError, _engine_error)
    app.add_exception_handler(DataError, _engine_error)
    app.add_exception_handler(DatasetError, _dataset_error)
    # Unhandled errors are answered by ObservabilityMiddleware (with the request id); this one is
    # the net for an error raised outside it (in that middleware itself).
    app.add_exception_handler(Exception, _unexpected)
