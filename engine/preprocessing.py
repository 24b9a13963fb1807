"""Input standardisation: x′ = (x − mean) / scale per feature (exercise 4-1: centred inputs).

The mean and scale are fitted on training rows and stored with the model, so predictions see the
inputs exactly as training did.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.batching import FeatureMoments, feature_moments
from engine.errors import DataError

__all__ = ["Standardizer"]

Array = np.ndarray


class Standardizer:
    """x′ = (x − mean) / scale with per-feature `mean` and `scale` arrays of shape (n_features,)."""

    def __init__(self, mean: Array, scale: Array) -> None:
        mean, scale = np.asarray(mean), np.asarray(scale)
        if mean.ndim != 1 or mean.shape != scale.shape:
            raise DataError(f"mean {mean.shape} and scale {scale.shape} must be equal 1-D shapes")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise DataError("mean must be finite and scale finite and positive")
        self.mean, self.scale = mean, scale

    @classmethod
    def fit(cls, X: Array, dtype: Any = np.float64) -> Standardizer:
        """Per-column mean and population std (ddof 0), chunked in float64 (feature_moments)."""
        if X.ndim != 2 or X.shape[0] == 0:
            raise DataError(f"fit needs a non-empty 2-D array, got shape {X.shape}")
        return cls.from_moments(feature_moments(X), dtype)

    @classmethod
    def from_moments(cls, moments: FeatureMoments, dtype: Any) -> Standardizer:
        """mean and scale = std in `dtype`; scale = 1 for a constant feature (centred, not divided).

        Constant means minimum = maximum: the float64 std of a constant column is often not 0 but
        ~1e-17 (its mean is off by an ulp), and dividing by it would blow 0.2 up to 7e15. A std
        that rounds to 0 in `dtype` (float32 below ~1e-45) is kept at 1 likewise.
        """
        scale = moments.std.astype(dtype)
        scale[(moments.maximum == moments.minimum) | ~(scale > 0)] = 1
        return cls(moments.mean.astype(dtype), scale)

    @property
    def n_features(self) -> int:
        return int(self.mean.shape[0])

    def transform(self, X: Array, out: Array | None = None) -> Array:
        """x′ = (x − mean) / scale; with `out` (which may be X itself) nothing is allocated."""
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise DataError(f"expected (n_samples, {self.n_features}) inputs, got {X.shape}")
        out = np.subtract(X, self.mean, out=out)
        result: Array = np.divide(out, self.scale, out=out)
        return result
