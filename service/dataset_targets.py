"""Targets → (y, task, classes): task inference and class encoding shared by every format.

Task inference (API.md): string targets, and whole-number targets with at most 100 distinct values,
mean classification; anything else regression. Classes are the sorted distinct labels and y holds
their indices, so `classes[y[i]]` is row i's label.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from service.csv_table import csv_number
from service.dataset_errors import DatasetError, cell_error

__all__ = [
    "MAX_INFERRED_CLASSES",
    "MAX_LABEL_CHARS",
    "Label",
    "Targets",
    "Task",
    "check_task",
    "encode_labels",
    "encode_numbers",
    "encode_texts",
]

Task = Literal["classification", "regression"]
Label = str | int | float
Targets = tuple[np.ndarray, Task, list[Label] | None]

MAX_INFERRED_CLASSES = 100
MAX_LABEL_CHARS = 1024  # a class name, not a document; bounds the stored classes array
_EXACT_INTEGER_LIMIT = 2.0**53  # beyond this float64 cannot tell neighbouring integers apart


def check_task(task: str | None) -> Task | None:
    if task in (None, "classification", "regression"):
        return task  # type: ignore[return-value]
    raise DatasetError(
        f"task must be 'classification' or 'regression', not {task!r}",
        [{"loc": ["task"], "msg": "unknown task"}],
    )


def encode_texts(
    cells: list[str], *, task: Task | None, column: str | None, max_classes: int
) -> Targets:
    """Targets read as text (CSV): numbers when every cell parses as one, else string labels."""
    values = np.empty(len(cells), dtype=np.float64)
    for row, cell in enumerate(cells, start=1):
        try:
            values[row - 1] = csv_number(cell)
        except (ValueError, OverflowError):
            if task == "regression":
                raise cell_error(f"{cell[:40]!r} is not a number", row=row, column=column) from None
            return _string_classes(cells, column=column, max_classes=max_classes)
    return encode_numbers(values, task=task, column=column, max_classes=max_classes)


def encode_labels(labels: list[str], *, task: Task | None, max_classes: int) -> Targets:
    """String labels (JSON): always classes; a regression task needs numbers."""
    if task == "regression":
        raise cell_error(f"{labels[0][:40]!r} is not a number", row=1, loc=["y", 0])
    return _string_classes(labels, column=None, max_classes=max_classes)


def encode_numbers(
    values: np.ndarray, *, task: Task | None, column: str | None, max_classes: int
) -> Targets:
    """Numeric targets of shape (n,) or (n, n_targets); non-finite values are refused."""
    values = np.asarray(values, dtype=np.float64)
    _check_finite(values, column=column)
    if values.ndim == 2 and values.shape[1] == 1 and task == "classification":
        values = values[:, 0]
    whole = bool(
        np.all(np.abs(values) < _EXACT_INTEGER_LIMIT) and np.all(values == np.floor(values))
    )
    if task is None:
        few = values.ndim == 1 and np.unique(values).size <= MAX_INFERRED_CLASSES
        task = "classification" if whole and few else "regression"
    if task == "regression":
        return values, "regression", None
    if values.ndim != 1:
        raise DatasetError(f"classification needs one target column, got {values.shape[1]}")
    distinct, y = np.unique(values, return_inverse=True)
    labels: list[Label] = [int(v) for v in distinct] if whole else [float(v) for v in distinct]
    _check_class_count(len(labels), column=column, max_classes=max_classes)
    return y.astype(np.int64), "classification", labels


def _string_classes(cells: list[str], *, column: str | None, max_classes: int) -> Targets:
    # Python sets, not np.unique: a numpy string array is as wide as the longest label in every row.
    labels = sorted(set(cells))
    _check_class_count(len(labels), column=column, max_classes=max_classes)
    if max(map(len, labels)) > MAX_LABEL_CHARS:
        # The stored classes are one string array, every label padded to the longest: one
        # 1 MiB label among 8,192 classes would be 32 GiB.
        row = next(i for i, cell in enumerate(cells, start=1) if len(cell) > MAX_LABEL_CHARS)
        length = len(cells[row - 1])
        msg = f"a class label of {length} characters; at most {MAX_LABEL_CHARS} allowed"
        raise cell_error(msg, row=row, column=column,
                         loc=["file"] if column else ["y", row - 1])
    index = {label: i for i, label in enumerate(labels)}
    y = np.fromiter((index[cell] for cell in cells), dtype=np.int64, count=len(cells))
    return y, "classification", list(labels)


def _check_class_count(n_classes: int, *, column: str | None, max_classes: int) -> None:
    name = f"target {column!r}" if column else "y"
    if n_classes < 2:
        raise DatasetError(
            f"{name} has a single class; classification needs at least two "
            "(or pass task=regression)",
            [{"loc": ["y"] if column is None else ["file"], "msg": "one class only"}],
        )
    if n_classes > max_classes:
        raise DatasetError(
            f"{name} has {n_classes} distinct labels; at most {max_classes} classes are supported "
            "(is it an id column? pass target=<column> or task=regression)",
            [{"loc": ["y"] if column is None else ["file"], "msg": "too many classes"}],
        )


def _check_finite(values: np.ndarray, *, column: str | None) -> None:
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        row = int(bad[0][0]) + 1
        msg = f"{values[tuple(bad[0])]} is not a finite number"
        raise cell_error(msg, row=row, column=column, loc=["file"] if column else ["y", row - 1])
