"""Dataset parsing: what each format accepts; every bad input is a DatasetError saying where."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from service.dataset_parsing import (
    DatasetError,
    UnsupportedDatasetFormat,
    canonical_bytes,
    parse_csv,
    parse_json_bytes,
    parse_json_dataset,
    parse_npz,
    parse_upload,
)
from service.dataset_targets import MAX_LABEL_CHARS
from service.settings import Settings
from tests.service.api_helpers import npz_bytes

LIMITS = Settings(
    max_rows=50, max_columns=6, max_field_bytes=1024, max_npz_members=8,
    max_array_elements=100_000, max_json_bytes=64 * 1024,
)  # fmt: skip


def csv_dataset(text: str | bytes, *, target: str | None = None, task: str | None = None):
    data = text.encode() if isinstance(text, str) else text
    return parse_csv(io.BytesIO(data), target=target, task=task, limits=LIMITS)


def zip_of(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=True)  # test data only: object arrays
    return buffer.getvalue()


def npy_header_only(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    buffer = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def good_y() -> bytes:
    return npy_bytes(np.array([0, 1, 0, 1], dtype=np.int64))


# --- CSV -----------------------------------------------------------------------------------------


def test_csv_reads_features_and_string_labels_from_the_last_column():
    parsed = csv_dataset("a,b,label\n1,2,cat\n3,4.5,dog\n-1e3,0,cat\n")
    assert parsed.X.dtype == np.float64
    np.testing.assert_array_equal(parsed.X, [[1, 2], [3, 4.5], [-1000, 0]])
    assert parsed.task == "classification"
    assert parsed.classes == ["cat", "dog"]
    np.testing.assert_array_equal(parsed.y, [0, 1, 0])
    assert parsed.y.dtype == np.int64
    assert parsed.feature_names == ["a", "b"]
    assert parsed.target_name == "label"


def test_csv_handles_a_utf8_byte_order_mark_and_crlf_and_blank_lines():
    parsed = csv_dataset(b"\xef\xbb\xbfx,y\r\n1,0\r\n\r\n2,1\r\n")
    assert parsed.feature_names == ["x"]
    np.testing.assert_array_equal(parsed.X[:, 0], [1, 2])


def test_csv_target_can_be_any_named_column():
    parsed = csv_dataset("t,a,b\n1.5,1,2\n2.5,3,4\n", target="t")
    assert parsed.feature_names == ["a", "b"]
    assert parsed.task == "regression"
    np.testing.assert_array_equal(parsed.y, [1.5, 2.5])
    np.testing.assert_array_equal(parsed.X, [[1, 2], [3, 4]])


def test_csv_whole_number_targets_with_few_values_are_classes():
    parsed = csv_dataset("a,digit\n1,3\n2,7\n3,3\n")
    assert parsed.task == "classification"
    assert parsed.classes == [3, 7]
    assert all(type(c) is int for c in parsed.classes)


def test_csv_whole_number_targets_with_exactly_100_values_are_still_classes():
    rows = "\n".join(f"{i},{i * 3}" for i in range(1, 101))  # 100 distinct values: the limit
    parsed = parse_csv(io.BytesIO(f"a,t\n{rows}\n".encode()), target=None, task=None,
                       limits=Settings(max_rows=200))  # fmt: skip
    assert parsed.task == "classification"
    assert parsed.classes == [i * 3 for i in range(1, 101)]
    assert all(type(c) is int for c in parsed.classes)
    np.testing.assert_array_equal(parsed.y, np.arange(100))
    assert parsed.y.dtype == np.int64


def test_csv_whole_number_targets_with_many_values_are_regression():
    rows = "\n".join(f"{i},{i * 3}" for i in range(1, 102))  # 101 distinct values
    parsed = parse_csv(io.BytesIO(f"a,t\n{rows}\n".encode()), target=None, task=None,
                       limits=Settings(max_rows=200))  # fmt: skip
    assert parsed.task == "regression"
    assert parsed.y.dtype == np.float64


def test_csv_explicit_task_overrides_inference():
    parsed = csv_dataset("a,t\n1,0.5\n2,1.5\n", task="classification")
    assert parsed.classes == [0.5, 1.5]
    parsed = csv_dataset("a,t\n1,0\n2,1\n", task="regression")
    assert parsed.task == "regression"
    np.testing.assert_array_equal(parsed.y, [0.0, 1.0])


@pytest.mark.parametrize(
    ("text", "row", "column"),
    [
        ("a,b,t\n1,2,0\n3,4\n", 2, None),  # ragged row
        ("a,b,t\n1,2,0\n3,4,1,9\n", 2, None),  # too many cells
        ("a,b,t\n1,abc,0\n", 1, "b"),  # non-numeric cell
        ("a,b,t\n1,,0\n", 1, "b"),  # empty cell
        ("a,b,t\n1,2,0\n1,nan,1\n", 2, "b"),
        ("a,b,t\ninf,2,0\n", 1, "a"),
        ("a,b,t\n1,-Infinity,0\n", 1, "b"),
        ("a,b,t\n1,1e400,0\n", 1, "b"),  # overflows to inf
        ("a,b,t\n1,2,\n", 1, "t"),  # empty target
        ("a,b,t\n1,2,0\n3,4,nan\n", 2, "t"),  # non-finite numeric target
        ('a,b,t\n1,"2\n', 1, None),  # unterminated quote
        ("a,b,t\n1,2,0\n1_000,4,1\n", 2, "a"),  # float() takes "1_000"; CSV readers do not
        ("a,b,t\n1,\u0661\u0662,0\n", 1, "b"),  # Arabic-Indic digits: float() reads 12
    ],
)
def test_csv_bad_cells_name_their_row_and_column(text, row, column):
    with pytest.raises(DatasetError) as caught:
        csv_dataset(text)
    error = caught.value.errors[0]
    assert error["row"] == row
    assert error.get("column") == column
    assert f"row {row}" in caught.value.detail


def test_csv_targets_in_python_only_number_forms_are_text_labels():
    parsed = csv_dataset("a,t\n1,1_0\n2,2\n3,1_0\n")
    assert parsed.task == "classification"
    assert parsed.classes == ["1_0", "2"]
    with pytest.raises(DatasetError) as caught:
        csv_dataset("a,t\n1,2.5\n2,\u0663\n", task="regression")
    assert (caught.value.errors[0]["row"], caught.value.errors[0]["column"]) == (2, "t")


def test_csv_regression_refuses_text_targets_naming_the_cell():
    with pytest.raises(DatasetError) as caught:
        csv_dataset("a,t\n1,2\n2,high\n", task="regression")
    assert caught.value.errors[0]["row"] == 2
    assert caught.value.errors[0]["column"] == "t"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("a,b,t\n", "no data rows"),
        ("a,b,t\n\n\n", "no data rows"),
        ("a,a,t\n1,2,0\n", "duplicated"),
        ("a,,t\n1,2,0\n", "no name"),
        ("a, ,t\n1,2,0\n", "no name"),
        ("1,2,3\n4,5,6\n", "header"),
        ("t\n1\n", "two columns"),
    ],
)
def test_csv_malformed_files_are_refused(text, fragment):
    with pytest.raises(DatasetError, match=fragment):
        csv_dataset(text)


def test_csv_unknown_target_column_lists_the_header():
    with pytest.raises(DatasetError, match=r"'z' is not in the header \('a', 't'\)"):
        csv_dataset("a,t\n1,0\n2,1\n", target="z")


def test_csv_refuses_more_rows_than_the_limit():
    rows = "\n".join(f"{i},{i % 2}" for i in range(LIMITS.max_rows + 1))
    with pytest.raises(DatasetError) as caught:
        csv_dataset(f"a,t\n{rows}\n")
    assert caught.value.errors[0]["row"] == LIMITS.max_rows + 1


def test_csv_refuses_more_columns_than_the_limit():
    header = ",".join(f"c{j}" for j in range(LIMITS.max_columns + 1))
    with pytest.raises(DatasetError, match=f"at most {LIMITS.max_columns}"):
        csv_dataset(f"{header}\n")


def test_csv_refuses_a_quoted_field_longer_than_the_field_limit():
    big = "x" * (LIMITS.max_field_bytes + 1)
    with pytest.raises(DatasetError) as caught:
        csv_dataset(f'a,t\n1,0\n2,"{big}"\n')
    assert caught.value.errors[0]["row"] == 2
    assert "field" in caught.value.detail


def test_csv_refuses_a_line_without_end_before_reading_it_whole():
    with pytest.raises(DatasetError, match="line 2 is longer"):
        csv_dataset("a,t\n" + "1" * 100_000)


def test_csv_refuses_bytes_that_are_not_utf8():
    with pytest.raises(DatasetError, match="UTF-8"):
        csv_dataset(b"a,t\n1,\xff\xfe\n")


def test_csv_single_class_is_an_error():
    with pytest.raises(DatasetError, match="single class"):
        csv_dataset("a,t\n1,yes\n2,yes\n")


def test_csv_too_many_string_classes_is_an_error():
    rows = "\n".join(f"{i},id{i}" for i in range(20))
    limits = Settings(max_width=10)
    with pytest.raises(DatasetError, match="20 distinct labels"):
        parse_csv(io.BytesIO(f"a,t\n{rows}\n".encode()), target=None, task=None, limits=limits)


def test_csv_reads_from_a_path_and_leaves_a_file_object_open(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,t\n1,0\n2,1\n")
    assert parse_csv(path, target=None, task=None, limits=LIMITS).n_samples == 2
    with path.open("rb") as handle:
        parse_csv(handle, target=None, task=None, limits=LIMITS)
        assert not handle.closed


def test_csv_reads_the_bundled_digits_example():
    parsed = parse_csv("examples/digits.csv", target=None, task=None, limits=Settings())
    assert parsed.X.shape == (1797, 64)
    assert parsed.classes == list(range(10))


# --- NPZ -----------------------------------------------------------------------------------------


def test_npz_reads_x_and_y():
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    parsed = parse_npz(npz_bytes(X=X, y=np.array([0, 1, 0, 1])), task=None, limits=LIMITS)
    assert parsed.X.dtype == np.float64
    np.testing.assert_array_equal(parsed.X, X)
    assert parsed.classes == [0, 1]
    assert parsed.feature_names == ["x1", "x2", "x3"]


def test_npz_multi_target_regression_keeps_two_dimensional_y():
    y = np.linspace(0, 1, 8).reshape(4, 2)
    parsed = parse_npz(npz_bytes(X=np.ones((4, 1)), y=y), task=None, limits=LIMITS)
    assert parsed.task == "regression"
    assert parsed.y.shape == (4, 2)


def test_npz_compressed_archives_are_read():
    buffer = io.BytesIO()
    np.savez_compressed(buffer, X=np.random.default_rng(0).random((40, 3)), y=np.arange(40) % 3)
    assert parse_npz(buffer.getvalue(), task=None, limits=LIMITS).classes == [0, 1, 2]


HOSTILE_NPZ = {
    "object array": lambda: zip_of({"X.npy": npy_bytes(np.array([[{}]], dtype=object)),
                                    "y.npy": good_y()}),
    "129-byte member declaring 2**40 elements": lambda: zip_of(
        {"X.npy": npy_header_only((2**40, 1)) + b"\0", "y.npy": good_y()}),
    "shape within limits but bytes missing": lambda: zip_of(
        {"X.npy": npy_header_only((4, 3)) + b"\0" * 8, "y.npy": good_y()}),
    "nine members": lambda: zip_of({f"m{i}.npy": good_y() for i in range(9)}),
    "complex dtype": lambda: npz_bytes(X=np.ones((4, 1), dtype=np.complex128), y=np.arange(4) % 2),
    "structured dtype": lambda: npz_bytes(
        X=np.zeros(4, dtype=[("a", "<f8"), ("b", "<i4")]), y=np.arange(4) % 2),
    "float16": lambda: npz_bytes(X=np.ones((4, 1), dtype=np.float16), y=np.arange(4) % 2),
    "strings": lambda: npz_bytes(X=np.array([["a"]] * 4), y=np.arange(4) % 2),
    "truncated": lambda: npz_bytes(X=np.ones((4, 2)), y=np.arange(4) % 2)[:-30],
    "not a zip": lambda: b"a,b\n1,2\n",
    "bare .npy": lambda: npy_bytes(np.ones((4, 2))),
    "npy header glued before a zip": lambda: npy_header_only((2**40,)) + npz_bytes(
        X=np.ones((4, 2)), y=np.arange(4) % 2),
    "missing y": lambda: npz_bytes(X=np.ones((4, 2))),
    "duplicated member names": lambda: _duplicated_members(),
    "y rows differ from X rows": lambda: npz_bytes(X=np.ones((4, 2)), y=np.arange(3) % 2),
    "X one-dimensional": lambda: npz_bytes(X=np.ones(4), y=np.arange(4) % 2),
    "non-finite X": lambda: npz_bytes(X=np.array([[1.0], [np.inf], [0], [1]]), y=np.arange(4) % 2),
    "single class": lambda: npz_bytes(X=np.ones((4, 2)), y=np.zeros(4, dtype=np.int64)),
    "y with no columns": lambda: npz_bytes(X=np.ones((4, 2)), y=np.ones((4, 0))),
    "y wider than a JSON y may be": lambda: npz_bytes(X=np.ones((4, 2)), y=np.ones((4, 7))),
}  # fmt: skip


def _duplicated_members() -> bytes:
    buffer = io.BytesIO()
    with (
        pytest.warns(UserWarning, match="Duplicate name"),
        zipfile.ZipFile(buffer, "w") as archive,
    ):
        for _ in range(2):
            archive.writestr("X.npy", npy_bytes(np.ones((4, 1))))
        archive.writestr("y.npy", good_y())
    return buffer.getvalue()


HOSTILE_NPZ_REASONS = {
    "object array": "dtype |O",
    "129-byte member declaring 2**40 elements": "1099511627776 elements",
    "shape within limits but bytes missing": "holds 136 bytes",
    "nine members": "declares 9 members",
    "complex dtype": "dtype <c16",
    "structured dtype": "dtype |V12",
    "float16": "dtype <f2",
    "strings": "dtype <U1",
    "truncated": "truncated",
    "not a zip": "zip header",
    "bare .npy": "zip header",
    "npy header glued before a zip": "zip header",
    "missing y": "lacks y.npy",
    "duplicated member names": "same name",
    "y rows differ from X rows": "one row per row",
    "X one-dimensional": "2-D",
    "non-finite X": "not a finite number",
    "single class": "single class",
    "y with no columns": "at least one target",
    "y wider than a JSON y may be": "7 columns; at most 6",
}


@pytest.mark.parametrize("case", sorted(HOSTILE_NPZ))
def test_npz_hostile_archives_are_refused_for_their_reason(case):
    with pytest.raises(DatasetError) as caught:
        parse_npz(HOSTILE_NPZ[case](), task=None, limits=LIMITS)
    assert HOSTILE_NPZ_REASONS[case] in caught.value.detail


def test_npz_bomb_is_refused_by_its_compression_ratio():
    buffer = io.BytesIO()
    np.savez_compressed(buffer, X=np.zeros((250_000, 4)), y=np.arange(250_000) % 2)
    limits = Settings(max_array_elements=10**7, max_rows=10**6)
    with pytest.raises(DatasetError, match="100:1"):
        parse_npz(buffer.getvalue(), task=None, limits=limits)


def test_npz_declared_elements_over_the_limit_name_the_member_and_shape():
    data = zip_of({"X.npy": npy_header_only((LIMITS.max_array_elements + 1, 1)), "y.npy": good_y()})
    with pytest.raises(DatasetError, match=r"X\.npy declares shape \(100001, 1\)"):
        parse_npz(data, task=None, limits=LIMITS)


def test_npz_member_count_is_checked_from_the_end_record():
    data = zip_of({f"m{i}.npy": b"" for i in range(LIMITS.max_npz_members + 1)})
    with pytest.raises(DatasetError, match="declares 9 members"):
        parse_npz(data, task=None, limits=LIMITS)


# --- NPZ with unicode class labels ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["<U5", ">U5", ">U7"])
def test_npz_unicode_y_is_class_labels_like_csv_strings(dtype):
    X = np.arange(8, dtype=np.float64).reshape(4, 2)
    y = np.array(["dog", "cat", " dog ", "cat"], dtype=dtype)  # stripped as a CSV target cell
    parsed = parse_npz(npz_bytes(X=X, y=y), task=None, limits=LIMITS)
    assert parsed.task == "classification"
    assert parsed.classes == ["cat", "dog"]
    assert parsed.y.dtype == np.int64 and parsed.y.tolist() == [1, 0, 1, 0]
    np.testing.assert_array_equal(parsed.X, X)
    assert parse_npz(npz_bytes(X=X, y=y), task="classification", limits=LIMITS).classes == [
        "cat", "dog"]  # fmt: skip


def test_npz_unicode_y_canonical_bytes_are_deterministic_and_pickle_free():
    X = np.ones((4, 2))
    little = parse_npz(npz_bytes(X=X, y=np.array(["b", "a", "b", "a"], dtype="<U4")),
                       task=None, limits=LIMITS)  # fmt: skip
    big = parse_npz(npz_bytes(X=X, y=np.array(["b", "a", "b", "a"], dtype=">U1")),
                    task=None, limits=LIMITS)  # fmt: skip
    data, digest = canonical_bytes(little)
    assert canonical_bytes(big) == (data, digest)  # byte order and width of the upload do not leak
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        assert arrays["classes"].tolist() == ["a", "b"]
        assert arrays["y"].tolist() == [1, 0, 1, 0]


def test_npz_unicode_y_labels_are_strings_even_when_they_look_like_numbers():
    y = np.array(["1", "2", "1", "2"])  # as JSON "y": ["1", "2"]: an explicit string type
    assert parse_npz(npz_bytes(X=np.ones((4, 1)), y=y), task=None, limits=LIMITS).classes == [
        "1", "2"]  # fmt: skip


def test_npz_unicode_y_wider_than_a_csv_cell_is_refused_naming_y_and_width():
    width = LIMITS.max_field_bytes + 1
    y = np.array(["a", "b", "a", "b"], dtype=f"<U{width}")
    wide = rf"y\.npy has dtype <U{width}: labels {width} characters wide"
    with pytest.raises(DatasetError, match=wide) as caught:
        parse_npz(npz_bytes(X=np.ones((4, 1)), y=y), task=None, limits=LIMITS)
    assert caught.value.errors[0]["loc"] == ["y"]
    y = np.array(["a", "b", "a", "b"], dtype=f"<U{LIMITS.max_field_bytes}")  # at the limit: read
    assert parse_npz(npz_bytes(X=np.ones((4, 1)), y=y), task=None, limits=LIMITS).classes == [
        "a", "b"]  # fmt: skip


def test_npz_unicode_y_counts_its_real_bytes_against_the_budget():
    limits = Settings(max_field_bytes=1024, max_array_elements=1000, max_rows=1000)
    y = np.array(["a", "b"] * 100, dtype="<U10")  # 200 elements but 8000 bytes: budget 8 * 1000
    data = zip_of({"X.npy": npy_bytes(np.ones((200, 1))), "y.npy": npy_bytes(y)},
                  zipfile.ZIP_DEFLATED)  # fmt: skip
    with pytest.raises(DatasetError, match="9600 bytes together; at most 8000"):
        parse_npz(data, task=None, limits=limits)
    assert parse_npz(npz_bytes(X=np.ones((200, 1)), y=y.astype("<U4")), task=None,
                     limits=limits).classes == ["a", "b"]  # fmt: skip


def test_npz_unicode_y_header_checks_happen_before_loading():
    y_header = npy_header_only((LIMITS.max_array_elements + 1,), descr="<U3")  # no payload at all
    with pytest.raises(DatasetError, match=r"y\.npy declares shape \(100001,\)"):
        parse_npz(zip_of({"X.npy": npy_bytes(np.ones((4, 1))), "y.npy": y_header}), task=None,
                  limits=LIMITS)  # fmt: skip
    short = npy_header_only((4,), descr=">U3") + b"\0" * 47  # 4 labels need 48 bytes
    with pytest.raises(DatasetError, match="holds"):
        parse_npz(zip_of({"X.npy": npy_bytes(np.ones((4, 1))), "y.npy": short}), task=None,
                  limits=LIMITS)  # fmt: skip


def test_npz_unicode_y_with_invalid_code_points_is_refused_naming_the_row():
    for code in (0xD800, 0x110000):
        y = np.array([0x61, 0x62, code, 0x61], dtype="<u4").view("<U1")
        with pytest.raises(DatasetError, match=f"U\\+{code:X}") as caught:
            parse_npz(npz_bytes(X=np.ones((4, 1)), y=y), task=None, limits=LIMITS)
        assert caught.value.errors[0]["loc"] == ["y", 2]


UNICODE_Y_REFUSED = {
    "bytes dtype": (np.array([b"a", b"b", b"a", b"b"]), None, "dtype |S1; only bool"),
    "object dtype": (np.array(["a", "b", "a", "b"], dtype=object), None, "dtype |O; only bool"),
    "two-dimensional": (np.array([["a"], ["b"], ["a"], ["b"]]), None, "must be 1-D"),
    "regression task": (np.array(["a", "b", "a", "b"]), "regression", "'a' is not a number"),
    "empty label": (np.array(["a", "b", "", "b"]), None, "row 3: empty label"),
    "whitespace label": (np.array(["a", "b", "a", "  "]), None, "row 4: empty label"),
    "single class": (np.array(["a", " a", "a ", "a"]), None, "single class"),
    "too many classes": (np.array([f"c{i}" for i in range(4)]), None, "4 distinct labels"),
}


@pytest.mark.parametrize("case", sorted(UNICODE_Y_REFUSED))
def test_npz_unicode_y_refusals_say_why(case):
    y, task, reason = UNICODE_Y_REFUSED[case]
    data = zip_of({"X.npy": npy_bytes(np.ones((4, 1))), "y.npy": npy_bytes(y)})
    limits = LIMITS.model_copy(update={"max_width": 3}) if case == "too many classes" else LIMITS
    with pytest.raises(DatasetError) as caught:
        parse_npz(data, task=task, limits=limits)
    assert reason in caught.value.detail
    if case in ("bytes dtype", "object dtype"):
        assert "unicode strings" in caught.value.detail  # says which dtypes y may have


def test_npz_unicode_x_is_still_refused_as_features():
    with pytest.raises(DatasetError, match=r"X\.npy has dtype <U1; .*labels of y"):
        parse_npz(npz_bytes(X=np.array([["a"]] * 4), y=np.array(["a", "b"] * 2)), task=None,
                  limits=LIMITS)  # fmt: skip


# --- JSON ----------------------------------------------------------------------------------------


def test_json_reads_x_and_labels():
    parsed = parse_json_dataset({"X": [[1, 2.5], [3, 4]], "y": ["b", "a"]}, task=None,
                                limits=LIMITS)  # fmt: skip
    np.testing.assert_array_equal(parsed.X, [[1, 2.5], [3, 4]])
    assert parsed.classes == ["a", "b"]
    np.testing.assert_array_equal(parsed.y, [1, 0])


def test_json_multi_target_regression_and_feature_names():
    obj = {"X": [[1], [2]], "y": [[0.5, 1.0], [1.5, 2.0]], "feature_names": ["size"]}
    parsed = parse_json_dataset(obj, task=None, limits=LIMITS)
    assert parsed.task == "regression"
    assert parsed.y.shape == (2, 2)
    assert parsed.feature_names == ["size"]


def test_json_task_key_is_honoured():
    parsed = parse_json_dataset({"X": [[1], [2]], "y": [0, 1], "task": "regression"}, task=None,
                                limits=LIMITS)  # fmt: skip
    assert parsed.task == "regression"


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_json_refuses_non_finite_tokens(token):
    with pytest.raises(DatasetError, match=token):
        parse_json_bytes(f'{{"X": [[1], [{token}]], "y": [0, 1]}}'.encode(), task=None,
                         limits=LIMITS)  # fmt: skip


@pytest.mark.parametrize(
    ("obj", "loc"),
    [
        ({"X": [[1, 2], [3]], "y": [0, 1]}, ["X", 1]),
        ({"X": [[1, True], [3, 4]], "y": [0, 1]}, ["X", 0, 1]),
        ({"X": [[1, "2"], [3, 4]], "y": [0, 1]}, ["X", 0, 1]),
        ({"X": [[1, None], [3, 4]], "y": [0, 1]}, ["X", 0, 1]),
        ({"X": [[1, 1e400], [3, 4]], "y": [0, 1]}, ["X", 0, 1]),
        ({"X": [[1, 10**400], [3, 4]], "y": [0, 1]}, ["X", 0, 1]),
        ({"X": [[1], [2]], "y": [0, 1, 0]}, ["y"]),
        ({"X": [[1], [2]], "y": [0, "a"]}, ["y", 1]),
        ({"X": [[1], [2]], "y": [0, 1], "path": "/etc/passwd"}, ["path"]),
        ({"X": [], "y": []}, ["X"]),
        ({"X": [[1], [2]]}, ["y"]),
    ],
)
def test_json_bad_values_are_located(obj, loc):
    with pytest.raises(DatasetError) as caught:
        parse_json_dataset(obj, task=None, limits=LIMITS)
    assert caught.value.errors[0]["loc"] == loc


def test_json_regression_refuses_string_labels():
    with pytest.raises(DatasetError, match="not a number"):
        parse_json_dataset({"X": [[1], [2]], "y": ["a", "b"]}, task="regression", limits=LIMITS)


def test_json_limits_bytes_nesting_and_rows():
    with pytest.raises(DatasetError, match="limited to"):
        parse_json_bytes(b" " * (LIMITS.max_json_bytes + 1), task=None, limits=LIMITS)
    with pytest.raises(DatasetError, match="nested too deeply"):
        parse_json_bytes(b"[" * 50_000, task=None, limits=LIMITS)
    rows = [[i] for i in range(LIMITS.max_rows + 1)]
    with pytest.raises(DatasetError, match="rows"):
        parse_json_dataset({"X": rows, "y": [i % 2 for i in range(len(rows))]}, task=None,
                           limits=LIMITS)  # fmt: skip


def test_unknown_task_is_refused():
    with pytest.raises(DatasetError, match="task"):
        parse_json_dataset({"X": [[1], [2]], "y": [0, 1]}, task="clustering", limits=LIMITS)


# --- upload dispatch and canonical bytes ---------------------------------------------------------


def test_upload_dispatches_on_extension_then_media_type_then_content():
    csv = b"a,t\n1,0\n2,1\n"
    npz = npz_bytes(X=np.ones((2, 3)), y=np.array([0, 1]))
    doc = json.dumps({"X": [[1, 2]] * 2, "y": [0, 1]}).encode()
    kwargs = {"target": None, "task": None, "limits": LIMITS}
    assert parse_upload(io.BytesIO(csv), "d.CSV", None, **kwargs).n_features == 1
    assert parse_upload(io.BytesIO(npz), "data.npz", "text/csv", **kwargs).n_features == 3
    assert parse_upload(io.BytesIO(doc), "blob", "application/json", **kwargs).n_features == 2
    assert parse_upload(io.BytesIO(npz), "", "application/octet-stream", **kwargs).n_features == 3
    assert parse_upload(io.BytesIO(doc), "", None, **kwargs).n_features == 2
    assert parse_upload(io.BytesIO(csv), "", None, **kwargs).n_features == 1


@pytest.mark.parametrize(
    ("filename", "media"),
    [("model.pkl", "application/octet-stream"), ("x", "application/python-pickle"),
     ("y.bin", "application/vnd.bentoml+pickle")],
)  # fmt: skip
def test_upload_refuses_other_formats_as_unsupported(filename, media):
    with pytest.raises(UnsupportedDatasetFormat) as caught:
        parse_upload(io.BytesIO(b"\x80\x04."), filename, media, target=None, task=None,
                     limits=LIMITS)  # fmt: skip
    assert caught.value.status == 415


def test_canonical_bytes_are_deterministic_and_round_trip_without_pickle():
    parsed = csv_dataset("a,b,t\n1,2,cat\n3,4,dog\n")
    first, digest = canonical_bytes(parsed)
    again, digest_again = canonical_bytes(csv_dataset("a,b,t\n1,2,cat\n3,4,dog\n"))
    assert first == again and digest == digest_again
    with np.load(io.BytesIO(first), allow_pickle=False) as arrays:
        np.testing.assert_array_equal(arrays["X"], parsed.X)
        np.testing.assert_array_equal(arrays["y"], parsed.y)
        assert arrays["classes"].tolist() == ["cat", "dog"]
    assert parse_npz(first, task=None, limits=LIMITS).classes == [0, 1]


def test_canonical_bytes_differ_when_the_data_differ():
    _, one = canonical_bytes(csv_dataset("a,t\n1,0\n2,1\n"))
    _, two = canonical_bytes(csv_dataset("a,t\n1,0\n3,1\n"))
    assert one != two


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_a_class_label_longer_than_the_cap_is_refused_naming_its_row(fmt):
    # stored classes are one string array padded to the longest label: one huge label among
    # thousands of classes would make it gigabytes
    limits = LIMITS.model_copy(update={"max_field_bytes": 1 << 20})
    labels = ["a", "b", "c" * (MAX_LABEL_CHARS + 1)]
    with pytest.raises(DatasetError) as caught:
        if fmt == "csv":
            text = "x,t\n" + "".join(f"{i},{label}\n" for i, label in enumerate(labels))
            parse_csv(io.BytesIO(text.encode()), target=None, task=None, limits=limits)
        else:
            body = {"X": [[0.0], [1.0], [2.0]], "y": labels}
            parse_json_dataset(body, task=None, limits=limits)
    assert caught.value.errors[0]["row"] == 3
    assert f"at most {MAX_LABEL_CHARS}" in caught.value.detail
    longest_allowed = "b" * MAX_LABEL_CHARS
    text = f"x,t\n0,a\n1,{longest_allowed}\n"
    parsed = parse_csv(io.BytesIO(text.encode()), target=None, task=None, limits=limits)
    assert parsed.classes == ["a", longest_allowed]
