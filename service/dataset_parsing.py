"""Uploaded bytes (CSV, NPZ, JSON) → a ParsedDataset, refusing anything unsafe before allocating it.

Every reader bounds what it reads by the limits in Settings (rows, columns, field bytes, NPZ
members, array elements, JSON bytes) and raises DatasetError, which names the row and column when
there is one. Nothing here deserializes code: `.npz` members are read with `allow_pickle=False`
after their headers were checked, JSON with a parser that refuses NaN/Infinity tokens.

Formats:
  CSV   header line required; target column `target` (default: last), numbers or string labels;
        every other column numeric
  NPZ   members `X` (2-D) and `y` (1-D or 2-D), bool/int/uint/float32/float64; `y` may also be
        1-D fixed-width unicode (`<U…`/`>U…`): class labels, stripped like CSV target cells
  JSON  {"X": [[...], ...], "y": [...]} (optional "name", "task", "feature_names")
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from service.csv_table import read_csv_table
from service.dataset_checks import check_extent, check_finite_features, default_names
from service.dataset_errors import DatasetError, UnsupportedDatasetFormat, cell_error
from service.dataset_targets import (
    Label,
    Targets,
    Task,
    check_task,
    encode_labels,
    encode_numbers,
    encode_texts,
)
from service.json_dataset import read_json_dataset, strict_json_loads
from service.npz_reader import read_npz_arrays
from service.request_guards import media_type
from service.settings import Settings

__all__ = [
    "DatasetError",
    "ParsedDataset",
    "UnsupportedDatasetFormat",
    "canonical_bytes",
    "parse_csv",
    "parse_json_bytes",
    "parse_json_dataset",
    "parse_npz",
    "parse_upload",
    "strict_json_loads",
]

Source = str | Path | bytes | BinaryIO
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # the zip epoch: equal datasets give equal bytes and sha256


@dataclass(frozen=True)
class ParsedDataset:
    X: np.ndarray  # float64 (n_samples, n_features), all finite
    y: np.ndarray  # classification: int64 class indices (n,); regression: float64 (n,) or (n, k)
    task: Task
    feature_names: list[str]
    target_name: str | None
    classes: list[Label] | None  # original labels, index = class id (sorted)

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])


def parse_csv(
    path_or_file: Source, *, target: str | None, task: str | None, limits: Settings
) -> ParsedDataset:
    """A CSV with a header line; the target column is `target` or the last one."""
    wanted = check_task(task)
    with _binary(path_or_file) as binary:
        table = read_csv_table(binary, target=target, limits=limits)
    y, found, classes = encode_texts(
        table.target_cells, task=wanted, column=table.target_name, max_classes=limits.max_width
    )
    return ParsedDataset(table.X, y, found, table.feature_names, table.target_name, classes)


def parse_npz(path_or_file: Source, *, task: str | None, limits: Settings) -> ParsedDataset:
    """A NumPy `.npz` holding X and y; headers, sizes and dtypes are checked before loading."""
    wanted = check_task(task)
    with _binary(path_or_file) as binary:
        X, y = read_npz_arrays(binary, limits=limits)
    return _from_arrays(X, y, task=wanted, limits=limits)


def parse_json_dataset(obj: Any, *, task: str | None, limits: Settings) -> ParsedDataset:
    """An already-decoded JSON object `{"X": [[...]], "y": [...]}` (NaN/Inf values refused)."""
    X, (y, found, classes), names = read_json_dataset(obj, task=task, limits=limits)
    return ParsedDataset(X, y, found, names, None, classes)


def parse_json_bytes(data: bytes, *, task: str | None, limits: Settings) -> ParsedDataset:
    """Raw JSON bytes (an upload or a request body) → ParsedDataset, strictly decoded."""
    if len(data) > limits.max_json_bytes:
        raise DatasetError(
            f"a JSON dataset is limited to {limits.max_json_bytes} bytes; "
            "upload larger data as CSV or NPZ"
        )
    return parse_json_dataset(strict_json_loads(data), task=task, limits=limits)


def parse_upload(
    file: Source,
    filename: str,
    content_type: str | None,
    *,
    target: str | None,
    task: str | None,
    limits: Settings,
) -> ParsedDataset:
    """Dispatch an uploaded file on its extension, else its media type, else its first bytes."""
    with _binary(file) as binary:
        binary.seek(0)
        kind = _upload_kind(filename, content_type, binary.read(8))
        binary.seek(0)
        if kind == "npz":
            return parse_npz(binary, task=task, limits=limits)
        if kind == "json":
            return parse_json_bytes(
                binary.read(limits.max_json_bytes + 1), task=task, limits=limits
            )
        return parse_csv(binary, target=target, task=task, limits=limits)


def canonical_bytes(parsed: ParsedDataset) -> tuple[bytes, str]:
    """The dataset as deterministic `.npz` bytes (X, y, classes when present) and their sha256."""
    arrays = {"X": parsed.X, "y": parsed.y}
    if parsed.classes is not None:
        arrays["classes"] = np.asarray(parsed.classes)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_DATE)
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()


# --- helpers -------------------------------------------------------------------------------------


class _binary:
    """Context manager: a path is opened (and closed) here, bytes are wrapped, files pass as is."""

    def __init__(self, source: Source) -> None:
        self.source, self.opened = source, None
        if isinstance(source, str | Path):
            self.opened = open(source, "rb")  # noqa: SIM115 - closed in __exit__

    def __enter__(self) -> BinaryIO:
        if self.opened is not None:
            return self.opened
        return io.BytesIO(self.source) if isinstance(self.source, bytes) else self.source  # type: ignore[return-value]

    def __exit__(self, *exc: object) -> None:
        if self.opened is not None:
            self.opened.close()


_EXTENSIONS = {".csv": "csv", ".npz": "npz", ".json": "json"}
_MEDIA_TYPES = {
    "text/csv": "csv",
    "application/csv": "csv",
    "text/plain": "csv",
    "application/zip": "npz",
    "application/x-npz": "npz",
    "application/json": "json",
}


def _upload_kind(filename: str, content_type: str | None, head: bytes) -> str:
    suffix = Path(filename or "").suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    media = media_type(content_type)
    if media in _MEDIA_TYPES:
        return _MEDIA_TYPES[media]
    if not suffix and media in ("", "application/octet-stream"):
        if head.startswith(b"PK\x03\x04"):
            return "npz"
        if head.lstrip()[:1] == b"{":
            return "json"
        return "csv"
    raise UnsupportedDatasetFormat(
        f"unsupported dataset file {filename!r} ({media or 'no media type'}); "
        "upload .csv, .npz or .json",
        [{"loc": ["file"], "msg": "unsupported format"}],
    )


def _from_arrays(
    X: np.ndarray, y: np.ndarray, *, task: Task | None, limits: Settings
) -> ParsedDataset:
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise DatasetError(f"X must be a 2-D array (n_samples, n_features), got shape {X.shape}")
    if y.ndim not in (1, 2) or y.shape[0] != X.shape[0] or (y.ndim == 2 and y.shape[1] < 1):
        raise DatasetError(
            f"y must have one row per row of X ({X.shape[0]}) and at least one target, "
            f"got shape {y.shape}"
        )
    if y.dtype.kind == "U" and y.ndim != 1:
        raise DatasetError(
            f"y holds strings (dtype {y.dtype.str}), which are class labels: it must be 1-D, "
            f"one label per row, got shape {y.shape}"
        )
    check_extent(X.shape[0], X.shape[1], limits)
    if y.ndim == 2:  # the same bound as a JSON "y" matrix
        check_extent(y.shape[0], y.shape[1], limits)
    X = np.asarray(X, dtype=np.float64)
    check_finite_features(X)
    if y.dtype.kind == "U":
        encoded = _unicode_targets(y, task=task, max_classes=limits.max_width)
    else:
        encoded = encode_numbers(y, task=task, column=None, max_classes=limits.max_width)
    return ParsedDataset(X, encoded[0], encoded[1], default_names(X.shape[1]), None, encoded[2])


def _unicode_targets(y: np.ndarray, *, task: Task | None, max_classes: int) -> Targets:
    """A 1-D unicode y → classes, like JSON string labels; cells are stripped as in a CSV."""
    labels = [label.strip() for label in y.tolist()]  # rows ≤ max_rows: check_extent came first
    for row, label in enumerate(labels, start=1):
        if not label:
            raise cell_error("empty label", row=row, loc=["y", row - 1])
    return encode_labels(labels, task=task, max_classes=max_classes)
