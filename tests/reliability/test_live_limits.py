"""L1, L2, L4, S7 against a live uvicorn: limits hold on the wire, with bounded memory.

Nothing here is timed: a request the server leaves hanging fails on its client timeout (10 s where
the point is an answer instead of a hang), and speed targets live in bench/.

Memory is the server's resident set read from /proc: its peak (VmHWM, reset before each
measurement) after a rejection minus its resident size (VmRSS) before, so a transient spike counts
even if it is freed again.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.reliability.hostile_payloads import hostile_npz_corpus
from tests.reliability.reliability_helpers import (
    ALICE,
    live_server,
    reset_peak_rss,
    rss_bytes,
    strict_json,
)

MiB = 1 << 20
ANSWER_TIMEOUT = 10.0  # seconds a client waits where the point is "answered, not hung"
UPLOAD_LIMIT = 64 * MiB
JSON_LIMIT = 16 * MiB
BOUNDARY = "s3boundary"

pytestmark = [pytest.mark.live, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("limits") / "data"
    with live_server(data_dir, max_upload_bytes=str(UPLOAD_LIMIT),
                     max_json_bytes=str(JSON_LIMIT)) as live:  # fmt: skip
        yield live


def multipart_chunks(n_bytes: int, chunk: int = 1 * MiB) -> Iterator[bytes]:
    """A CSV file part of about n_bytes, streamed (no Content-Length: chunked encoding)."""
    disposition = 'Content-Disposition: form-data; name="file"; filename="big.csv"'
    yield f"--{BOUNDARY}\r\n{disposition}\r\nContent-Type: text/csv\r\n\r\na,t\n".encode()
    for _ in range(n_bytes // chunk):
        yield b"1,0\n" * (chunk // 4)
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def json_chunks(n_bytes: int, chunk: int = 1 * MiB) -> Iterator[bytes]:
    yield b'{"X": [[1], [2]], "y": [0, 1], "name": "'
    for _ in range(n_bytes // chunk):
        yield b"x" * chunk
    yield b'"}'


def post(
    server, path: str, content, headers: dict[str, str], timeout: float = 60
) -> httpx.Response:
    with httpx.Client(base_url=server.base_url, headers=ALICE, timeout=timeout) as client:
        try:
            return client.post(path, content=content, headers=headers)
        except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
            pytest.fail(f"the server dropped the connection instead of answering 413: {exc!r}")


def growth(server, action) -> tuple[httpx.Response, int]:
    """(response, peak RSS minus RSS before) around one request."""
    reset_peak_rss(server.pid)
    before = rss_bytes(server.pid)
    response = action()
    return response, rss_bytes(server.pid, "VmHWM") - before


def assert_413(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text[:300]
    assert response.headers["content-type"] == "application/problem+json"
    strict_json(response.text)


# --- L1 ------------------------------------------------------------------------------------------


def test_upload_over_the_limit_with_content_length_is_refused_unread(server):
    body = b"".join(multipart_chunks(UPLOAD_LIMIT + MiB))
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    response, grown = growth(server, lambda: post(server, "/v1/datasets", body, headers))
    assert_413(response)
    assert grown < UPLOAD_LIMIT / 2, grown


def test_chunked_upload_over_the_limit_is_refused_without_buffering(server):
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    chunks = multipart_chunks(UPLOAD_LIMIT + 8 * MiB)
    response, grown = growth(server, lambda: post(server, "/v1/datasets", chunks, headers))
    assert_413(response)
    assert grown < UPLOAD_LIMIT / 2, grown


def test_json_over_the_limit_with_content_length_is_refused_unread(server):
    body = b"".join(json_chunks(JSON_LIMIT + MiB))
    headers = {"Content-Type": "application/json"}
    response, grown = growth(server, lambda: post(server, "/v1/datasets", body, headers))
    assert_413(response)
    assert grown < JSON_LIMIT / 2, grown


def test_chunked_json_over_the_limit_is_refused_without_buffering(server):
    """L1: a JSON body without Content-Length is spooled (1 MiB in memory, then disk) until it is
    known to fit, so refusing it grows the server by far less than half the limit."""
    headers = {"Content-Type": "application/json"}
    for path in ("/v1/datasets", "/v1/jobs"):
        chunks = json_chunks(JSON_LIMIT * 2)
        response, grown = growth(server, lambda c=chunks, p=path: post(server, p, c, headers))
        assert_413(response)
        assert grown < JSON_LIMIT / 2, (path, grown)


# --- L2 ------------------------------------------------------------------------------------------


def multipart(parts: list[tuple[str, str]], boundary: str = BOUNDARY) -> bytes:
    body = "".join(f"--{boundary}\r\n{head}\r\n\r\n{data}\r\n" for head, data in parts)
    return (body + f"--{boundary}--\r\n").encode()


FILE_PART = ('Content-Disposition: form-data; name="file"; filename="d.csv"', "a,t\n1,0\n2,1\n")
NAME_FIELD = 'Content-Disposition: form-data; name="name"'
MULTIPART_CASES = {
    "17 parts": multipart([(NAME_FIELD, "x")] * 16 + [FILE_PART]),
    "64 KiB part header": multipart([(NAME_FIELD + '; x="' + "a" * 65536 + '"', "x"), FILE_PART]),
    # Each line under python-multipart's own per-line cap, together over our 16 KiB per part.
    "17 KiB of part headers": multipart([(FILE_PART[0] + "".join(
        f"\r\nX-Pad-{i}: " + "a" * 3500 for i in range(5)), FILE_PART[1])]),
    "2 MiB non-file field": multipart([(NAME_FIELD, "n" * (2 * MiB)), FILE_PART]),
    "two files": multipart([FILE_PART, FILE_PART]),
    "part without a name": multipart([("Content-Disposition: form-data", "x"), FILE_PART]),
    "boundary never closed": multipart([FILE_PART])[:-12],
}  # fmt: skip
HOSTILE_BOUNDARIES = ["-" * 300, "a" * 70, "a" * 71 + '"', "=?", ";", " x"]


@pytest.mark.parametrize("case", sorted(MULTIPART_CASES))
def test_multipart_limits_answer_4xx(server, case):
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    response = post(server, "/v1/datasets", MULTIPART_CASES[case], headers, ANSWER_TIMEOUT)
    assert response.status_code in {400, 413, 422}, (
        case,
        response.status_code,
        response.text[:200],
    )
    strict_json(response.text)


@pytest.mark.parametrize("boundary", HOSTILE_BOUNDARIES)
def test_odd_boundaries_are_answered(server, boundary):
    headers = {"Content-Type": f'multipart/form-data; boundary="{boundary}"'}
    response = post(server, "/v1/datasets", multipart([FILE_PART], boundary), headers,
                    ANSWER_TIMEOUT)  # fmt: skip
    assert response.status_code in {201, 400, 413, 422}, response.text[:200]


# --- S7: CVE-2024-24762 -------------------------------------------------------------------------

REDOS_OPTIONS = '; !="' + "\\" * 8192  # the python-multipart/Starlette options-header ReDoS shape


@pytest.mark.parametrize("media_type", ["multipart/form-data", "application/x-www-form-urlencoded"])
def test_redos_content_type_is_answered_4xx_while_health_answers(server, media_type):
    headers = {"Content-Type": media_type + REDOS_OPTIONS}
    with ThreadPoolExecutor(1) as pool:
        hostile = pool.submit(post, server, "/v1/datasets", b"x", headers, ANSWER_TIMEOUT)
        health_checks = 0
        with httpx.Client(base_url=server.base_url, timeout=5) as client:
            while not hostile.done() or not health_checks:
                assert client.get("/healthz").status_code == 200
                health_checks += 1
        response = hostile.result()  # re-raises the hostile request's time-out, if any
    assert 400 <= response.status_code < 500


# --- L4 ------------------------------------------------------------------------------------------


def test_hostile_npz_corpus_is_refused_with_bounded_memory(server, tmp_path):
    canary = tmp_path / "canary"
    reset_peak_rss(server.pid)
    before = rss_bytes(server.pid)
    for name, content in hostile_npz_corpus(canary).items():
        with httpx.Client(base_url=server.base_url, headers=ALICE, timeout=ANSWER_TIMEOUT) as api:
            response = api.post("/v1/datasets", files={"file": ("d.npz", content)})
        assert response.status_code in {413, 422}, (name, response.status_code)
    assert rss_bytes(server.pid, "VmHWM") - before < 32 * MiB
    assert not canary.exists()
