"""OpenAPI details the route decorators cannot infer: error responses, links, hand-parsed bodies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from service.auth import BEARER_SCHEME, PUBLIC_PATHS
from service.problems import PROBLEM_MEDIA_TYPE, problem_title

__all__ = [
    "AUTH_ERRORS",
    "dataset_request_body",
    "error_responses",
    "install_openapi",
    "json_request_body",
    "links",
]

REF_TEMPLATE = "#/components/schemas/{model}"
# Errors every authenticated route can answer with.
AUTH_ERRORS = (401,)
# What service.middleware answers before a route runs: 400 for a foreign Host (or an unreadable
# body); on requests with a body also 403 (foreign Origin), 413 (too big), 415 (media type).
MIDDLEWARE_ERRORS = (400,)
BODY_MIDDLEWARE_ERRORS = (400, 403, 413, 415)


def _problem(status: int) -> dict[str, Any]:
    return {
        "description": problem_title(status),
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries documenting each status as a problem document."""
    return {status: _problem(status) for status in sorted({*AUTH_ERRORS, *statuses})}


def _add_security(schema: dict[str, Any]) -> None:
    schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes["HTTPBearer"] = BEARER_SCHEME
    for path, operations in schema.get("paths", {}).items():
        if path not in PUBLIC_PATHS:
            for operation in operations.values():
                operation["security"] = [{"HTTPBearer": []}]


def _add_middleware_errors(schema: dict[str, Any]) -> None:
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            has_body = method in ("post", "put", "patch", "delete")
            responses = operation.setdefault("responses", {})
            for status in BODY_MIDDLEWARE_ERRORS if has_body else MIDDLEWARE_ERRORS:
                responses.setdefault(str(status), _problem(status))


def links(**targets: tuple[str, str]) -> dict[str, Any]:
    """OpenAPI links from a response's `id` to other operations: name=(operationId, parameter)."""
    return {
        name: {"operationId": operation, "parameters": {parameter: "$response.body#/id"}}
        for name, (operation, parameter) in targets.items()
    }


def json_request_body(schema_name: str, *, description: str) -> dict[str, Any]:
    """A required application/json body whose schema is a named component (parsed by hand)."""
    return {
        "required": True,
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}
        },
    }


DATASET_FORM = {
    "type": "object",
    "required": ["file"],
    "additionalProperties": False,
    "properties": {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "CSV with a header, .npz holding X and y, or JSON {X, y}.",
        },
        "name": {"type": "string", "maxLength": 256},
        "target": {
            "type": "string",
            "maxLength": 256,
            "description": "CSV target column (default: the last column).",
        },
        "task": {
            "type": "string",
            "enum": ["classification", "regression"],
            "description": "Inferred when absent.",
        },
    },
}


def dataset_request_body() -> dict[str, Any]:
    """POST /v1/datasets takes a multipart upload or a JSON body on the same path."""
    return {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": DATASET_FORM},
            "application/json": {"schema": {"$ref": "#/components/schemas/DatasetJsonBody"}},
        },
    }


def install_openapi(app: FastAPI, extra_models: Sequence[type[BaseModel]]) -> None:
    """Generate the schema once, adding components that only hand-parsed bodies refer to."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in extra_models:
                model_schema = model.model_json_schema(ref_template=REF_TEMPLATE)
                for name, definition in model_schema.pop("$defs", {}).items():
                    components.setdefault(name, definition)
                components.setdefault(model.__name__, model_schema)
            _add_middleware_errors(schema)
            _add_security(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
