"""A model's weights as a plain npz (no pickle, no JSON member) or as nested lists.

Names follow the lecture: W1, b1, W2, b2, … with W{l} of shape (M_l, M_{l-1}) so that z = W a + b;
gamma{l} / beta{l} for PReLU and learnable swish; mean and scale for the input standardisation.
"""

from __future__ import annotations

import io

import numpy as np

from engine.model import Model as EngineModel

__all__ = ["weight_arrays", "weights_npz"]


def weight_arrays(model: EngineModel) -> dict[str, np.ndarray]:
    arrays = model.network.get_weights()
    if model.standardizer is not None:
        arrays["mean"] = np.asarray(model.standardizer.mean)
        arrays["scale"] = np.asarray(model.standardizer.scale)
    return arrays


def weights_npz(model: EngineModel) -> bytes:
    """npz bytes every member of which loads with np.load(..., allow_pickle=False)."""
    buffer = io.BytesIO()
    np.savez(buffer, **weight_arrays(model))  # type: ignore[arg-type]
    return buffer.getvalue()
