"""Rows and targets from request bodies → arrays the engine accepts; 422s say what is wrong.

Inputs are raw features (the model's stored preprocessing is applied later, by the engine Model).
Targets are labels as in the dataset (mapped to class indices through the model's `classes`), or
values for regression. NaN and Infinity never get this far: the request schemas reject them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from service.problems import PayloadTooLarge, Unprocessable, field_error

__all__ = [
    "check_row_count",
    "checked_feature_matrix",
    "class_indices",
    "feature_matrix",
    "regression_targets",
]


def feature_matrix(
    rows: Sequence[Sequence[float]], *, n_features: int, max_rows: int
) -> np.ndarray:
    """(n_samples, n_features) float64; 413 beyond max_rows, 422 for a wrong or ragged width."""
    check_row_count(len(rows), max_rows=max_rows)
    for index, row in enumerate(rows):
        if len(row) != n_features:
            raise _wrong_width(index, len(row), n_features)
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), n_features)


def checked_feature_matrix(X: np.ndarray, *, n_features: int, max_rows: int) -> np.ndarray:
    """The checks of feature_matrix for rows that are already one (n_rows, width) array."""
    check_row_count(X.shape[0], max_rows=max_rows)
    if X.shape[1] != n_features:
        raise _wrong_width(0, X.shape[1], n_features)
    return X


def check_row_count(n_rows: int, *, max_rows: int) -> None:
    """413 for more rows than one request may carry."""
    if n_rows > max_rows:
        raise PayloadTooLarge(
            f"{n_rows} rows in one request; the limit is {max_rows} "
            "(FEEDFORWARD_MAX_PREDICT_ROWS); split the rows into several requests"
        )


def _wrong_width(index: int, width: int, n_features: int) -> Unprocessable:
    return Unprocessable(
        f"the model expects {n_features} features per row; row {index} has {width}",
        errors=[
            field_error(["body", "inputs", index], f"expected {n_features} features, given {width}")
        ],
    )


def _check_length(targets: Sequence[Any], n_samples: int) -> None:
    if len(targets) != n_samples:
        raise Unprocessable(
            f"{len(targets)} targets for {n_samples} input rows; give one target per row",
            errors=[field_error(["body", "targets"], f"expected {n_samples} targets")],
        )


def class_indices(targets: Sequence[Any], *, classes: list[Any], n_samples: int) -> np.ndarray:
    """int64 class ids of the labels; 422 naming labels the model does not know."""
    _check_length(targets, n_samples)
    index_of = {_label_key(label): index for index, label in enumerate(classes)}
    indices = np.empty(len(targets), dtype=np.int64)
    unknown: list[Any] = []
    for row, label in enumerate(targets):
        index = index_of.get(_label_key(label)) if not isinstance(label, list) else None
        if index is None:
            unknown.append(label)
        else:
            indices[row] = index
    if unknown:
        raise Unprocessable(
            f"unknown class label(s) {unknown[:5]}; the model's classes are {classes[:20]}",
            errors=[field_error(["body", "targets"], "unknown class label")],
        )
    return indices


def _label_key(label: Any) -> tuple[str, Any]:
    # 1 and 1.0 are one label (JSON does not tell them apart); "1" is another; True is not 1.
    if isinstance(label, bool) or label is None:
        return ("other", label)
    if isinstance(label, int | float):
        return ("number", float(label))
    return ("text", label)


def regression_targets(targets: Sequence[Any], *, n_targets: int, n_samples: int) -> np.ndarray:
    """(n_samples, n_targets) float64 values; 422 for labels or a wrong width."""
    _check_length(targets, n_samples)
    rows = [value if isinstance(value, list) else [value] for value in targets]
    for index, row in enumerate(rows):
        if len(row) != n_targets or not all(_is_number(v) for v in row):
            raise Unprocessable(
                f"target {index} must be {n_targets} number(s) for this regression model",
                errors=[field_error(["body", "targets", index], f"expected {n_targets} number(s)")],
            )
    return np.asarray(rows, dtype=np.float64).reshape(n_samples, n_targets)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
