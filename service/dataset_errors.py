"""Errors raised while reading an uploaded dataset. The API maps them to problem documents.

DatasetError (ValueError)      → 422: the bytes are not a usable dataset; `errors` names row/column
└── UnsupportedDatasetFormat   → 415: neither CSV, NPZ nor JSON by name, media type or content
"""

from __future__ import annotations

from typing import Any

__all__ = ["DatasetError", "UnsupportedDatasetFormat", "cell_error"]


class DatasetError(ValueError):
    """A dataset that cannot be used; `detail` is one sentence, `errors` locates each problem.

    Each entry of `errors` is `{"loc": [...], "msg": ..., "row"?: int, "column"?: str}` where `row`
    counts data rows from 1 (the CSV header is not a data row).
    """

    status = 422

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors if errors is not None else [{"loc": ["file"], "msg": detail}]


class UnsupportedDatasetFormat(DatasetError):
    """The upload is not one of the dataset formats we read."""

    status = 415


def cell_error(
    msg: str, *, row: int | None = None, column: str | None = None, loc: list[Any] | None = None
) -> DatasetError:
    """A DatasetError about one place in the data; the detail repeats row and column for humans."""
    where = ", ".join(
        part
        for part in (f"row {row}" if row else "", f"column {column!r}" if column else "")
        if part
    )
    detail = f"{where}: {msg}" if where else msg
    entry: dict[str, Any] = {"loc": loc if loc is not None else ["file"], "msg": msg}
    if row is not None:
        entry["row"] = row
    if column is not None:
        entry["column"] = column
    return DatasetError(detail, [entry])
