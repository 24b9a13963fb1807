"""Mini-batches without copying the dataset: shuffled indices gathered into reused buffers.

Every epoch reshuffles one index array in place (`Generator.shuffle`); each mini-batch gathers its
rows with `np.take(..., out=buffer)` and standardises them in that buffer. The dataset itself is
never copied or modified, so memory stays at the dataset plus a few batch-sized buffers.
Statistics over a subset of rows (standardizer, input checks) are computed in chunks likewise.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["STATS_CHUNK_ROWS", "BatchGatherer", "FeatureMoments", "feature_moments", "split_rows"]

Array = np.ndarray

STATS_CHUNK_ROWS = 1024  # rows per chunk for statistics: scratch of ~1 MB per 100 features


def split_rows(n_samples: int, fraction: float, rng: np.random.Generator) -> tuple[Array, Array]:
    """A random (train, validation) partition of row indices; validation gets ⌈fraction·n⌉ rows.

    Each part is sorted, so gathering walks the dataset in memory order.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"a validation split must be a fraction in (0, 1), got {fraction}")
    n_validation = int(np.ceil(fraction * n_samples))
    order = rng.permutation(n_samples)
    return np.sort(order[n_validation:]), np.sort(order[:n_validation])


@dataclass(frozen=True)
class FeatureMoments:
    """Per-feature mean, standard deviation (population, ddof 0), minimum and maximum (float64)."""

    mean: Array
    std: Array
    minimum: Array
    maximum: Array


def _chunks(X: Array, rows: Array | None) -> Iterator[Array]:
    n_rows = X.shape[0] if rows is None else rows.shape[0]
    for start in range(0, n_rows, STATS_CHUNK_ROWS):
        stop = min(start + STATS_CHUNK_ROWS, n_rows)
        yield X[start:stop] if rows is None else np.take(X, rows[start:stop], axis=0)


def feature_moments(X: Array, rows: Array | None = None) -> FeatureMoments:
    """Moments of X[rows] (all rows when None) in two chunked float64 passes (mean, then spread)."""
    n_features = X.shape[1]
    total = np.zeros(n_features, dtype=np.float64)
    minimum = np.full(n_features, np.inf, dtype=np.float64)
    maximum = np.full(n_features, -np.inf, dtype=np.float64)
    n_rows = 0
    for chunk in _chunks(X, rows):
        total += chunk.sum(axis=0, dtype=np.float64)  # float64 accumulation, no float64 copy
        np.minimum(minimum, chunk.min(axis=0), out=minimum, casting="unsafe")
        np.maximum(maximum, chunk.max(axis=0), out=maximum, casting="unsafe")
        n_rows += chunk.shape[0]
    mean = total / max(n_rows, 1)
    squares = np.zeros(n_features, dtype=np.float64)
    for chunk in _chunks(X, rows):
        deviation = np.subtract(chunk, mean, dtype=np.float64)
        squares += np.square(deviation, out=deviation).sum(axis=0)
    return FeatureMoments(mean, np.sqrt(squares / max(n_rows, 1)), minimum, maximum)


class BatchGatherer:
    """Reused (batch_size, n_features) and target buffers; `gather(idx)` fills and returns views.

    `prepare(batch)` (e.g. standardisation in place) runs on each gathered batch.
    """

    def __init__(self, X: Array, y: Array, batch_size: int, prepare: Any = None) -> None:
        self.X, self.y, self.prepare = X, y, prepare
        self._X_buffer = np.empty((batch_size, X.shape[1]), dtype=X.dtype)
        self._y_buffer = np.empty((batch_size, *y.shape[1:]), dtype=y.dtype)

    def gather(self, idx: Array) -> tuple[Array, Array]:
        n_rows = idx.shape[0]
        X_batch, y_batch = self._X_buffer[:n_rows], self._y_buffer[:n_rows]
        # mode="clip" skips the bounds check that would make np.take buffer its output
        self.X.take(idx, axis=0, out=X_batch, mode="clip")  # methods: no np.take wrapper per step
        self.y.take(idx, axis=0, out=y_batch, mode="clip")
        if self.prepare is not None:
            self.prepare(X_batch)
        return X_batch, y_batch
