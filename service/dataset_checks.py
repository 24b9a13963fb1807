"""Shape, size and finiteness checks every dataset format applies to its feature matrix."""

from __future__ import annotations

import numpy as np

from service.dataset_errors import DatasetError, cell_error
from service.settings import Settings

__all__ = ["check_extent", "check_finite_features", "default_names"]


def default_names(n_features: int) -> list[str]:
    return [f"x{j + 1}" for j in range(n_features)]


def check_finite_features(X: np.ndarray) -> None:
    bad = np.argwhere(~np.isfinite(X))
    if bad.size:
        i, j = (int(k) for k in bad[0])
        raise cell_error(
            f"{X[i, j]} is not a finite number", row=i + 1, column=f"x{j + 1}", loc=["X", i, j]
        )


def check_extent(n_rows: int, n_columns: int, limits: Settings) -> None:
    if n_rows > limits.max_rows:
        raise DatasetError(f"{n_rows} rows; at most {limits.max_rows} are allowed")
    if n_columns > limits.max_columns:
        raise DatasetError(f"{n_columns} columns; at most {limits.max_columns} are allowed")
    if n_rows * n_columns > limits.max_array_elements:
        raise DatasetError(
            f"{n_rows} x {n_columns} values; at most {limits.max_array_elements} are allowed"
        )
