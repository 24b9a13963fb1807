"""Checking and arranging training data once, before the first epoch.

The caller's arrays are never modified and copied at most once (only when their dtype differs
from the run's). Validation is either a fraction of the rows, split once with a seeded Generator,
or a separate (X, y) pair; the standardizer is fitted on the training rows only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from engine.batching import STATS_CHUNK_ROWS, FeatureMoments, feature_moments, split_rows
from engine.errors import DataError
from engine.spec import TrainingSpec, check_against_data

__all__ = ["TrainingData", "prepare_data"]

Array = np.ndarray
Task = Literal["classification", "regression"]
Validation = float | tuple[Array, Array] | None


@dataclass
class TrainingData:
    """Arrays in the run's dtype plus the row indices that make up each part."""

    X: Array
    y: Array
    train_rows: Array               # sorted row indices of X used for training
    X_val: Array | None             # validation inputs (X itself for a split)
    y_val: Array | None
    val_rows: Array | None          # rows of X_val to evaluate
    n_classes: int | None
    moments: FeatureMoments         # of the training rows, raw (before standardisation)


def _as_inputs(X: Any, dtype: np.dtype[Any], what: str) -> Array:
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"{what} must be a non-empty 2-D array (n_samples, n_features); "
                        f"got shape {X.shape}")
    if X.dtype.kind not in "biuf":  # complex would lose its imaginary part without a word
        raise DataError(f"{what} must hold real numbers, not {X.dtype}")
    X = np.ascontiguousarray(X, dtype=dtype)  # a copy only when the dtype differs
    assert isinstance(X, np.ndarray)
    for start in range(0, X.shape[0], STATS_CHUNK_ROWS):
        if not np.isfinite(X[start : start + STATS_CHUNK_ROWS]).all():
            raise DataError(f"{what} contains NaN or infinite values; remove or impute them")
    return X


def _as_targets(y: Any, n_rows: int, task: Task, dtype: np.dtype[Any], what: str) -> Array:
    y = np.asarray(y)
    if y.ndim == 0:
        raise DataError(f"{what} must have one target per row of the inputs, not a scalar")
    if y.shape[0] != n_rows:
        raise DataError(f"{what} has {y.shape[0]} rows but the inputs have {n_rows}")
    if task == "classification":
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{what} must be a 1-D array of integer class indices 0..K-1")
        if y.min() < 0:
            raise DataError(f"{what} holds a negative class index ({int(y.min())})")
        return np.ascontiguousarray(y, dtype=np.int64)
    if y.ndim == 1:
        y = y.reshape(-1, 1)
    if y.ndim != 2 or y.dtype.kind not in "iuf":
        raise DataError(f"{what} must be numeric of shape (n_samples,) or (n_samples, n_targets)")
    values: Array = np.ascontiguousarray(y, dtype=dtype)
    if not np.isfinite(values).all():
        raise DataError(f"{what} contains NaN or infinite values")
    return values


def _check_classes(y: Array, n_classes: int, what: str) -> None:
    if y.size and int(y.max()) >= n_classes:
        raise DataError(f"{what} holds class index {int(y.max())} but n_classes is {n_classes}")


def prepare_data(
    spec: TrainingSpec, X: Any, y: Any, *, task: Task, n_classes: int | None,
    validation: Validation, split_rng: np.random.Generator,
) -> TrainingData:
    """Validate and arrange the data for `train`; raises DataError or SpecError with advice."""
    if task not in ("classification", "regression"):
        raise DataError(f"task must be 'classification' or 'regression', not {task!r}")
    dtype = np.dtype(spec.dtype)
    X = _as_inputs(X, dtype, "X")
    y = _as_targets(y, X.shape[0], task, dtype, "y")
    if task == "classification":
        n_classes = int(y.max()) + 1 if n_classes is None else int(n_classes)
        _check_classes(y, n_classes, "y")
    check_against_data(spec, n_features=X.shape[1], task=task, n_classes=n_classes or 0,
                       n_targets=1 if task == "classification" else y.shape[1])
    all_rows = np.arange(X.shape[0], dtype=np.intp)
    if validation is None:
        return TrainingData(X, y, all_rows, None, None, None, n_classes, feature_moments(X))
    if isinstance(validation, tuple):
        X_val = _as_inputs(validation[0], dtype, "validation X")
        if X_val.shape[1] != X.shape[1]:
            raise DataError(f"validation X has {X_val.shape[1]} features; X has {X.shape[1]}")
        y_val = _as_targets(validation[1], X_val.shape[0], task, dtype, "validation y")
        if task == "classification":
            _check_classes(y_val, n_classes or 0, "validation y")
        val_rows = np.arange(X_val.shape[0], dtype=np.intp)
        return TrainingData(X, y, all_rows, X_val, y_val, val_rows, n_classes,
                            feature_moments(X))
    if not 0.0 < float(validation) < 1.0:
        raise DataError(f"validation must be a fraction in (0, 1) or an (X, y) pair, "
                        f"not {validation}")
    train_rows, val_rows = split_rows(X.shape[0], float(validation), split_rng)
    if train_rows.size == 0:
        raise DataError(f"a validation split of {validation} leaves no training rows")
    moments = feature_moments(X, train_rows)
    return TrainingData(X, y, train_rows, X, y, val_rows, n_classes, moments)
