"""S4 (payload half), S5, S8, L3, L4 over HTTP: hostile bytes get a 4xx and run nothing.

A pickle whose __reduce__ would create a canary file is sent under every media type and inside
every container we read; the canary must never appear. Traversal-shaped ids never reach a file.
Error bodies never carry a traceback, a path or SQL.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import OperationalError

from tests.reliability.hostile_payloads import (
    hostile_npz_corpus,
    npy_with_object_array,
    npz_with_pickled_member,
    pickled,
)
from tests.reliability.reliability_helpers import InProcessClient, make_app, strict_json

LEAKS = re.compile(r"Traceback|File \"|/work/|/tmp/|/etc/|site-packages|SELECT |INSERT |UPDATE ")


@pytest.fixture(scope="module")
def canary(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("canary") / "pickle-ran"


def assert_clean_problem(response, statuses: set[int]) -> None:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == "application/problem+json"
    assert not LEAKS.search(response.text), response.text
    strict_json(response.text)


# --- S4: pickle payloads ---------------------------------------------------------------------


PICKLE_MEDIA_TYPES = [
    "application/octet-stream",
    "application/python-pickle",
    "application/vnd.bentoml+pickle",
    "application/x-pickle",
    "text/csv",
]


@pytest.mark.parametrize("media_type", PICKLE_MEDIA_TYPES)
@pytest.mark.parametrize("path", ["/v1/datasets", "/v1/jobs", "/v1/models/0123/predict"])
def test_raw_pickle_bodies_are_refused_unread(service_client, canary, media_type, path):
    response = service_client.post(path, content=pickled(canary),
                                   headers={"Content-Type": media_type})  # fmt: skip
    assert_clean_problem(response, {415})
    assert not canary.exists()


@pytest.mark.parametrize("filename", ["model.pkl", "data.csv", "data.npz", "data.json", "data"])
@pytest.mark.parametrize("make", [pickled, npy_with_object_array, npz_with_pickled_member])
def test_pickles_inside_uploads_are_refused(service_client, canary, filename, make):
    files = {"file": (filename, make(canary), "application/octet-stream")}
    response = service_client.post("/v1/datasets", files=files)
    assert_clean_problem(response, {415, 422})
    assert not canary.exists()


def test_pickle_as_json_dataset_body_is_refused(service_client, canary):
    response = service_client.post("/v1/datasets", content=pickled(canary),
                                   headers={"Content-Type": "application/json"})  # fmt: skip
    assert_clean_problem(response, {422})
    assert not canary.exists()


# --- S5: no paths from clients -----------------------------------------------------------------

PATHLIKE_NAME = re.compile(r"path|file|dir|ur[il]|location|source|href|link", re.IGNORECASE)


def _request_properties(document: dict, node: object, seen: set[str]):
    """(name, schema) for every property reachable from a request schema, refs followed."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref not in seen:
            seen.add(ref)
            target = document
            for part in ref.removeprefix("#/").split("/"):
                target = target[part]
            yield from _request_properties(document, target, seen)
        yield from (node.get("properties") or {}).items()
        for value in node.values():
            yield from _request_properties(document, value, seen)
    elif isinstance(node, list):
        for value in node:
            yield from _request_properties(document, value, seen)


def test_no_request_field_is_a_path_or_url(service_client):
    document = service_client.get("/openapi.json").json()
    offenders, visited = [], set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            parameters = operation.get("parameters", [])
            fields = [(parameter["name"], parameter.get("schema", {})) for parameter in parameters]
            fields += _request_properties(document, [operation.get("requestBody", {}), parameters],
                                          set())
            for name, schema in fields:
                visited.add(name)
                uploaded_bytes = schema.get("format") == "binary" or "contentMediaType" in schema
                if (PATHLIKE_NAME.search(name) and not uploaded_bytes) or schema.get("format") in (
                    "uri", "uri-reference", "iri"
                ):  # fmt: skip
                    offenders.append(f"{method.upper()} {path}: {name}")
    assert offenders == []
    # the walk reached path and query parameters, JSON bodies and nested schemas
    assert {"dataset_id", "limit", "inputs", "network", "units"} <= visited


TRAVERSALS = ["../etc/passwd", "..%2f..%2fetc%2fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
              "..\\..\\windows\\win.ini", "%2Fetc%2Fpasswd", "%00", "x%00.csv", "a" * 300,
              "....//....//etc/passwd", "%252e%252e%252f", "~root", "C:%5Cboot.ini"]  # fmt: skip


@pytest.mark.parametrize("resource", ["datasets", "jobs", "models"])
@pytest.mark.parametrize("raw_id", TRAVERSALS)
def test_traversal_shaped_ids_are_404_or_422(service_client, resource, raw_id):
    response = service_client.get(f"/v1/{resource}/{raw_id}")
    assert response.status_code in {404, 422}, (raw_id, response.status_code)
    assert "root:" not in response.text
    assert not LEAKS.search(response.text)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw_id=st.text(min_size=1, max_size=80).filter(lambda s: s not in (".", "..")))
def test_fuzzed_ids_never_leak_or_fail(service_client, raw_id):
    response = service_client.get("/v1/models/" + quote(raw_id, safe=""))
    assert response.status_code in {404, 422}, (response.status_code, response.text[:300])
    assert not LEAKS.search(response.text)


def test_data_directory_holds_only_names_we_created(service_client, service_app):
    allowed = re.compile(r"feedforward\.db(-wal|-shm|-journal)?|[0-9a-f]{32}(\.\w+)?")
    names = [p.name for p in Path(service_app.state.settings.data_dir).rglob("*")]
    assert names and all(allowed.fullmatch(name) for name in names), names


# --- S8: error hygiene ---------------------------------------------------------------------------


def test_unexpected_errors_are_opaque_problems(tmp_path):
    from service.deps import get_database

    def broken_database():
        raise OperationalError(
            "SELECT secret FROM jobs WHERE path='/var/lib/x'", {}, OSError("/etc")
        )

    app = make_app(tmp_path / "data")
    app.dependency_overrides[get_database] = broken_database
    with InProcessClient(app) as client:
        response = client.get("/v1/jobs")
    assert_clean_problem(response, {500})
    assert re.search(r"[0-9a-f]{8,}", response.json()["error_id"])
    assert "secret" not in response.text


# --- L3: CSV corpus and fuzz -------------------------------------------------------------------


CSV_CORPUS = {
    "ragged row": (b"a,b,t\n1,2,x\n3,y\n", 2, None),
    "non-numeric cell": (b"a,b,t\n1,2,x\n3,abc,y\n", 2, "b"),
    "nan": (b"a,b,t\n1,nan,x\n3,4,y\n", 1, "b"),
    "inf": (b"a,b,t\n1,2,x\n-inf,4,y\n", 2, "a"),
    "1e400": (b"a,b,t\n1e400,2,x\n3,4,y\n", 1, "a"),
    "empty target": (b"a,b,t\n1,2,x\n3,4,\n", 2, "t"),
}


@pytest.mark.parametrize("case", sorted(CSV_CORPUS))
def test_csv_corpus_answers_422_naming_row_and_column(service_client, case):
    content, row, column = CSV_CORPUS[case]
    response = service_client.post("/v1/datasets", files={"file": ("d.csv", content, "text/csv")})
    assert_clean_problem(response, {422})
    error = response.json()["errors"][0]
    assert error["row"] == row and error.get("column") == column


@pytest.mark.parametrize(
    "content",
    [b"", b"a,b,t\n", b"a,a,t\n1,2,x\n", b",b,t\n1,2,x\n", b"1,2,3\n4,5,6\n",
     b"\xef\xbb\xbfa,t\n" + b"1,x\n" * 2, b'a,t\n1,"' + b"x" * (2 << 20) + b'"\n'],
)  # fmt: skip
def test_malformed_csv_files_answer_422(service_client, content):
    response = service_client.post("/v1/datasets", files={"file": ("d.csv", content, "text/csv")})
    assert_clean_problem(response, {413, 422})


ODD_CELLS = ["nan", "inf", "1e400", "", '"', "\r", "\x00", "\ufeff"]
CSV_CELLS = st.one_of(
    st.text(max_size=12), st.floats().map(repr), st.integers().map(str), st.sampled_from(ODD_CELLS)
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(st.lists(CSV_CELLS, min_size=1, max_size=5), min_size=0, max_size=8))
def test_fuzzed_csv_never_fails_the_server(service_client, rows):
    content = "\n".join(",".join(row) for row in rows).encode("utf-8", "surrogatepass")
    response = service_client.post("/v1/datasets", files={"file": ("f.csv", content, "text/csv")})
    assert response.status_code in {201, 413, 415, 422}, response.text[:300]
    strict_json(response.text)


# --- L4: hostile NPZ ---------------------------------------------------------------------------


def test_hostile_npz_corpus_answers_a_clean_4xx_and_runs_nothing(service_client, canary):
    for content in hostile_npz_corpus(canary).values():
        files = {"file": ("d.npz", content, "application/octet-stream")}
        response = service_client.post("/v1/datasets", files=files)
        assert_clean_problem(response, {413, 422})
    assert not canary.exists()
