"""S3 on the real app: DNS rebinding, cross-site POSTs and text/plain bodies change nothing."""

from __future__ import annotations

import json

import pytest

from tests.reliability.reliability_helpers import blobs_csv, small_job


@pytest.fixture(scope="module")
def dataset_id(service_client):
    files = {"file": ("blobs.csv", blobs_csv(), "text/csv")}
    response = service_client.post("/v1/datasets", files=files)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def totals(client) -> tuple[int, int]:
    return client.get("/v1/jobs").json()["total"], client.get("/v1/datasets").json()["total"]


def test_dns_rebinding_host_is_refused_even_with_a_valid_key(service_client):
    response = service_client.get("/v1/jobs", headers={"Host": "rebind.attacker.test"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


def test_cross_origin_post_is_refused_and_changes_nothing(service_client, dataset_id):
    before = totals(service_client)
    evil = {"Origin": "http://evil.test"}
    assert (
        service_client.post("/v1/jobs", json=small_job(dataset_id), headers=evil).status_code == 403
    )
    files = {"file": ("b.csv", blobs_csv(), "text/csv")}
    assert service_client.post("/v1/datasets", files=files, headers=evil).status_code == 403
    assert service_client.delete(f"/v1/datasets/{dataset_id}", headers=evil).status_code == 403
    assert totals(service_client) == before


def test_text_plain_json_body_is_refused_and_changes_nothing(service_client, dataset_id):
    """The MLflow CVE-2023-43472 shape: a 'simple' cross-site request with a JSON text body."""
    before = totals(service_client)
    body = json.dumps(small_job(dataset_id))
    response = service_client.post("/v1/jobs", content=body, headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    response = service_client.post(
        "/v1/datasets", content=json.dumps({"X": [[1], [2]], "y": [0, 1]}),
        headers={"Content-Type": "text/plain"},
    )  # fmt: skip
    assert response.status_code == 415
    assert totals(service_client) == before


def test_no_cors_headers_without_configuration(service_client):
    origin = {"Origin": "http://evil.test"}
    for response in (
        service_client.get("/v1/jobs", headers=origin),
        service_client.options(
            "/v1/jobs", headers={**origin, "Access-Control-Request-Method": "POST"}
        ),
    ):
        assert not any(name.startswith("access-control-") for name in response.headers)


def test_security_headers_on_api_responses(service_client):
    response = service_client.get("/v1/jobs")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


# Every method Schemathesis probes for ST204 (unsupported method), QUERY included.
PROBED_METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH", "TRACE", "QUERY")
BODIES = {
    "multipart": (b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--\r\n",
                  "multipart/form-data; boundary=x"),
    "text": (b"hello", "text/plain"),
    "json": (b"{}", "application/json"),
}  # fmt: skip


def undeclared_methods(service_client) -> list[tuple[str, str, set[str]]]:
    """(method, path with placeholder ids, declared methods) for every method a path lacks."""
    paths = service_client.get("/openapi.json").json()["paths"]
    probes = []
    for template, operations in paths.items():
        path = template.replace("{", "").replace("}", "")  # "/v1/jobs/{job_id}" → "/v1/jobs/job_id"
        declared = {method.upper() for method in operations}
        declared |= {"HEAD"} if "GET" in declared else set()
        probes += [(m, path, declared) for m in PROBED_METHODS if m not in declared]
    return probes


@pytest.mark.parametrize("body", sorted(BODIES))
def test_undeclared_method_gets_405_with_allow_before_any_body_check(service_client, body):
    """TRACE /v1/jobs with a multipart body is a 405 naming GET, HEAD, POST, not a 415 (ST204)."""
    content, content_type = BODIES[body]
    probes = undeclared_methods(service_client)
    assert ("TRACE", "/v1/jobs", {"GET", "HEAD", "POST"}) in probes
    for method, path, declared in probes:
        response = service_client.request(
            method, path, content=content, headers={"Content-Type": content_type}
        )
        assert response.status_code == 405, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        assert allowed == declared, (method, path)
