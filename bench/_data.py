"""Benchmark data: MNIST-shaped synthetic blobs, made here, and the UCI digits of examples/."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DIGITS_CSV = Path(__file__).resolve().parent.parent / "examples" / "digits.csv"
_CHUNK_ROWS = 4096  # generate in chunks so the peak memory is the dataset, not 2× it
_CLUSTERS_PER_CLASS = 4  # several blobs per class: the classes are not linearly separable
_CENTRE_SCALE = 0.25  # tuned so that one or two epochs of SGD reach ~94 %, not a trivial 100 %


def mnist_like(
    n_samples: int, *, n_features: int = 784, n_classes: int = 10, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """X float32 (n_samples, n_features), y int64 class indices: x = c_{class, cluster} + N(0, 1).

    Each class owns `_CLUSTERS_PER_CLASS` centres c ~ N(0, _CENTRE_SCALE²) per feature, so classes
    overlap a little and accuracy means something. Deterministic for a given seed.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(
        0.0, _CENTRE_SCALE, size=(n_classes * _CLUSTERS_PER_CLASS, n_features)
    ).astype(np.float32)
    y = rng.integers(0, n_classes, size=n_samples, dtype=np.int64)
    cluster = rng.integers(0, _CLUSTERS_PER_CLASS, size=n_samples, dtype=np.int64)
    X = np.empty((n_samples, n_features), dtype=np.float32)
    for start in range(0, n_samples, _CHUNK_ROWS):
        rows = slice(start, min(start + _CHUNK_ROWS, n_samples))
        rng.standard_normal(out=X[rows], dtype=np.float32)
        X[rows] += centres[y[rows] * _CLUSTERS_PER_CLASS + cluster[rows]]
    return X, y


def digits(test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, ...]:
    """UCI digits, split once by a seeded permutation: X_train, y_train, X_test, y_test."""
    table = np.loadtxt(DIGITS_CSV, delimiter=",", skiprows=1, dtype=np.float64)
    X, y = table[:, :-1], table[:, -1].astype(np.int64)
    order = np.random.default_rng(seed).permutation(X.shape[0])
    n_test = int(round(test_fraction * X.shape[0]))
    test, train = order[:n_test], order[n_test:]
    return X[train], y[train], X[test], y[test]
