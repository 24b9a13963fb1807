"""The simdjson bulk path for nested JSON rows: the same values as the schema, or no answer."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from service import json_rows
from service.json_rows import inputs_matrix
from service.model_schemas import PredictRequest

finite = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**63), 2**64 - 1)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda width: st.lists(st.lists(finite, min_size=width, max_size=width), min_size=1)
    ),
    st.booleans(),
)
def test_rows_equal_what_the_schema_validates(rows: list[list[float]], spaced: bool) -> None:
    body = json.dumps({"inputs": rows}, indent=2 if spaced else None).encode()
    expected = np.asarray(PredictRequest.model_validate_json(body).inputs, dtype=np.float64)
    matrix = inputs_matrix(body)
    assert matrix is not None
    assert matrix.dtype == np.float64 and matrix.shape == expected.shape
    np.testing.assert_array_equal(matrix, expected)  # bit for bit, -0.0 and subnormals included


@pytest.mark.parametrize(
    "body",
    [
        b'{"inputs": [[1, 2], [3]]}',  # ragged: the schema path names the row
        b'{"inputs": [[1, [2]]]}',  # a nested cell with the right count of numbers
        b'{"inputs": [[[1, 2]]]}',
        b'{"inputs": [[1, []]]}',
        b'{"inputs": [[1, true]]}',
        b'{"inputs": [[1, null]]}',
        b'{"inputs": [[1, "2"]]}',
        b'{"inputs": [[1, 1e400]]}',
        b'{"inputs": [[1, NaN]]}',
        b'{"inputs": [[1, 18446744073709551616]]}',  # beyond 64-bit integers (the schema takes it)
        b'{"inputs": [1, 2]}',
        b'{"inputs": [[1, 2], 3]}',
        b'{"inputs": [[]]}',
        b'{"inputs": []}',
        b'{"inputs": [[1, 2]], "extra": 1}',
        b'{"inputs": [[1, 2]], "inputs": [[3, 4]]}',  # duplicate keys: the schema keeps the last
        b'{"inputs_npy": "AAAA"}',
        b'{"input": [[1, 2]]}',
        b'{"\\u0069nputs": [[1, 2]]}',  # an escaped key: the schema reads it
        b"[[1, 2]]",
        b'{"inputs": [[1, 2]]} trailing',
        b"not json",
        b"",
    ],
)
def test_anything_but_plain_rectangular_numbers_is_left_to_the_schema(body: bytes) -> None:
    assert inputs_matrix(body) is None


@pytest.mark.parametrize(
    "body", [b'{"inputs": [[1, [2]]]}', b'{"inputs": [[1, []]]}', b'{"inputs": [[1, 1e400]]}']
)
def test_the_schema_rejects_what_the_bulk_path_declines(body: bytes) -> None:
    # The fallback must not turn a refused body into an accepted one.
    with pytest.raises(ValidationError):
        PredictRequest.model_validate_json(body)


def test_concurrent_bodies_each_get_their_own_rows() -> None:
    # One shared parser holds one document at a time; callers that find it busy use their own.
    bodies = [json.dumps({"inputs": [[float(i)] * 300] * 200}).encode() for i in range(8)]
    results: dict[int, np.ndarray | None] = {}
    start = threading.Barrier(len(bodies))

    def parse(index: int) -> None:
        start.wait()
        for _ in range(20):
            results[index] = inputs_matrix(bodies[index])
            matrix = results[index]
            assert matrix is not None and (matrix == index).all()

    threads = [threading.Thread(target=parse, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == list(range(len(bodies)))
    for index, matrix in results.items():
        assert matrix is not None and matrix.shape == (200, 300) and (matrix == index).all()


def test_bodies_above_the_shared_parser_bound_get_a_parser_of_their_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Untouchable:
        def parse(self, body: bytes) -> None:
            raise AssertionError("a large body must not grow the shared parser's buffers")

    small = json.dumps({"inputs": [[1.5, 2.5]]}).encode()
    large = json.dumps({"inputs": [[0.25] * 50] * 40}).encode()
    monkeypatch.setattr(json_rows, "SHARED_PARSER_MAX_BYTES", len(small))
    monkeypatch.setattr(json_rows, "_shared_parser", Untouchable())
    matrix = inputs_matrix(large)
    assert matrix is not None and matrix.shape == (40, 50) and (matrix == 0.25).all()
    with pytest.raises(AssertionError, match="shared parser"):
        inputs_matrix(small)  # small bodies do use it
