"""S2: every route, for every method it serves, refuses a missing or wrong key with 401.

The inventory is read from the app itself, so a route added later without authentication fails
here. Public by decision: /healthz, /readyz (probes), /openapi.json and the docs pages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from tests.reliability.reliability_helpers import PUBLIC_PATHS, InProcessClient, strict_json

SOME_ID = "0123456789abcdef0123456789abcdef"
WRONG_CREDENTIALS = [
    None,
    "Bearer not-a-key",
    "Bearer ",
    "Bearer key-alice-0123456789x",
    "Basic YWxpY2U6a2V5LWFsaWNlLTAxMjM0NTY3ODk=",
    "key-alice-0123456789",  # the right key without the scheme
]


def _walk(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI keeps included routers whole
        if included is not None:
            yield from _walk(included.routes, prefix + route.include_context.prefix)
        else:
            for method in sorted(getattr(route, "methods", None) or ()):
                yield method, prefix + route.path


def inventory(app: FastAPI) -> list[tuple[str, str]]:
    """(method, concrete path) for every route and method it serves, path parameters filled in.

    The union of the routing table (which also holds undocumented routes) and the OpenAPI paths.
    """
    served = set(_walk(app.routes))
    for path, operations in app.openapi()["paths"].items():
        served |= {(method.upper(), path) for method in operations if method != "parameters"}
    assert len(served) > 15, "the inventory found too few routes"
    return sorted((method, re.sub(r"\{[^}]+\}", SOME_ID, path)) for method, path in served)


def test_inventory_covers_the_api(service_app):
    paths = {path for _, path in inventory(service_app)}
    assert {"/v1/datasets", "/v1/jobs", "/v1/models", f"/v1/jobs/{SOME_ID}/cancel"} <= paths
    assert ("DELETE", f"/v1/datasets/{SOME_ID}") in inventory(service_app)


@pytest.mark.parametrize("credentials", WRONG_CREDENTIALS)
def test_every_private_route_and_method_answers_401(service_app, credentials):
    failures = []
    with InProcessClient(service_app, headers={}) as anonymous:
        for method, path in inventory(service_app):
            if path in PUBLIC_PATHS:
                continue
            headers = {"Authorization": credentials} if credentials is not None else {}
            response = anonymous.request(method, path, headers=headers)
            challenge = response.headers.get("www-authenticate", "")
            if response.status_code != 401 or not challenge.startswith("Bearer"):
                failures.append(f"{method} {path} → {response.status_code}")
            elif method != "HEAD":
                assert strict_json(response.text)["status"] == 401, (method, path)
    assert failures == []


def test_public_routes_answer_without_a_key(service_app):
    with InProcessClient(service_app, headers={}) as anonymous:
        for path in ("/healthz", "/readyz", "/openapi.json", "/docs"):
            assert anonymous.get(path).status_code == 200, path


def test_a_valid_key_is_accepted(service_client):
    assert service_client.get("/v1/jobs").status_code == 200


def test_openapi_declares_the_bearer_scheme(service_client):
    document = service_client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert any(s.get("type") == "http" and s.get("scheme") == "bearer" for s in schemes.values())
