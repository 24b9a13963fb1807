"""A JSON dataset `{"X": [[...], ...], "y": [...]}` → float64 X and encoded targets.

Decoding is strict: `NaN`, `Infinity` and `-Infinity` tokens are refused (Python's json accepts
them by default), and so are bools, strings or nulls where numbers belong.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from service.dataset_checks import check_extent, check_finite_features, default_names
from service.dataset_errors import DatasetError, cell_error
from service.dataset_targets import Targets, Task, check_task, encode_labels, encode_numbers
from service.settings import Settings

__all__ = ["read_json_dataset", "strict_json_loads"]

_KEYS = frozenset({"X", "y", "name", "task", "feature_names"})


def strict_json_loads(data: bytes | str) -> Any:
    """json.loads that refuses NaN, Infinity and -Infinity tokens and absurd nesting."""
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise DatasetError("JSON nested too deeply") from None
    except UnicodeDecodeError:
        raise DatasetError("JSON must be UTF-8 text") from None


def read_json_dataset(
    obj: Any, *, task: str | None, limits: Settings
) -> tuple[np.ndarray, Targets, list[str]]:
    """X (float64, finite), the encoded targets (y, task, classes) and the feature names."""
    if not isinstance(obj, dict):
        raise DatasetError('a JSON dataset is an object {"X": [[...], ...], "y": [...]}')
    unknown = sorted(str(key) for key in obj.keys() - _KEYS)
    if unknown:
        raise DatasetError(
            f"unknown keys {unknown}; expected X, y and optionally name, task, feature_names",
            [{"loc": [key], "msg": "unknown key"} for key in unknown],
        )
    wanted = check_task(task if task is not None else obj.get("task"))
    X = _json_matrix(obj.get("X"), "X", limits)
    check_finite_features(X)
    names = _json_feature_names(obj.get("feature_names"), X.shape[1])
    targets = _json_targets(obj.get("y"), n_samples=X.shape[0], task=wanted, limits=limits)
    return X, targets, names or default_names(X.shape[1])


def _refuse_constant(token: str) -> float:
    raise DatasetError(f"{token} is not allowed in JSON; use finite numbers")


def _json_matrix(rows: Any, name: str, limits: Settings) -> np.ndarray:
    if not isinstance(rows, list) or not rows or not isinstance(rows[0], list) or not rows[0]:
        raise DatasetError(
            f'"{name}" must be a non-empty list of non-empty rows',
            [{"loc": [name], "msg": "not a matrix"}],
        )
    check_extent(len(rows), len(rows[0]), limits)
    matrix = np.empty((len(rows), len(rows[0])), dtype=np.float64)
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != matrix.shape[1]:
            raise cell_error(
                f"expected a list of {matrix.shape[1]} numbers", row=i + 1, loc=[name, i]
            )
        matrix[i] = [_json_number(value, loc=[name, i, j]) for j, value in enumerate(row)]
    return matrix


def _json_number(value: Any, *, loc: list[Any]) -> float:
    """One JSON number as float64; bools, strings and nulls are refused, so is 1e400-as-int."""
    row, column = loc[1] + 1, (f"{loc[0].lower()}{loc[2] + 1}" if len(loc) > 2 else None)
    if type(value) not in (int, float):
        raise cell_error(
            f"{json.dumps(value)[:40]} is not a number", row=row, column=column, loc=loc
        )
    try:
        return float(value)
    except OverflowError:
        raise cell_error("too large for float64", row=row, column=column, loc=loc) from None


def _json_targets(values: Any, *, n_samples: int, task: Task | None, limits: Settings) -> Targets:
    if not isinstance(values, list) or len(values) != n_samples:
        got = len(values) if isinstance(values, list) else "not a list"
        raise DatasetError(
            f'"y" must list one target per row of X ({n_samples}), got {got}',
            [{"loc": ["y"], "msg": "length differs from X"}],
        )
    if all(type(value) is str for value in values):
        return encode_labels(values, task=task, max_classes=limits.max_width)
    if all(isinstance(value, list) for value in values):
        y = _json_matrix(values, "y", limits)
    else:
        y = np.array(
            [_json_number(v, loc=["y", i]) for i, v in enumerate(values)], dtype=np.float64
        )
    return encode_numbers(y, task=task, column=None, max_classes=limits.max_width)


def _json_feature_names(names: Any, n_features: int) -> list[str] | None:
    if names is None:
        return None
    ok = isinstance(names, list) and all(type(n) is str and n for n in names)
    if not ok or len(names) != n_features or len(set(names)) != n_features:
        raise DatasetError(
            f'"feature_names" must list {n_features} distinct non-empty strings',
            [{"loc": ["feature_names"], "msg": "bad feature names"}],
        )
    return list(names)
