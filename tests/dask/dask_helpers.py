"""Helpers for the Dask tests: polling with a deadline and small datasets as canonical npz bytes."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from service.jobs.protocol import arrays_to_npz

T = TypeVar("T")


def wait_until(condition: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """Poll `condition` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def blobs_arrays(
    seed: int, n_samples: int = 600, n_features: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian blobs: X float64 (n_samples, n_features), y int64 class ids."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 3.0, size=(3, n_features))
    y = rng.integers(0, 3, size=n_samples).astype(np.int64)
    X = (centers[y] + rng.normal(size=(n_samples, n_features))).astype(np.float64)
    return X, y


def blobs_npz(seed: int, **shape: int) -> tuple[bytes, str]:
    """The blobs as canonical npz bytes and their sha256, as the database stores a dataset."""
    X, y = blobs_arrays(seed, **shape)
    data = arrays_to_npz({"X": X, "y": y})
    return data, hashlib.sha256(data).hexdigest()
