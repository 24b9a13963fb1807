"""The dtypes uploaded arrays may have (.npz datasets, `inputs_npy` predictions): one rule for both.

Bool, signed and unsigned integers, float32 and float64 — plain arrays only (no structured, object
or sub-array dtypes). float16 and complex are refused with the same message everywhere: the engine
trains in float32 or float64, and a half-precision upload is more likely a mistake than a wish.
"""

from __future__ import annotations

import numpy as np

__all__ = ["READABLE_DTYPES", "readable_dtype"]

READABLE_DTYPES = "bool, integer, float32 and float64"


def readable_dtype(dtype: np.dtype) -> bool:
    """Whether an uploaded array of this dtype is read (checked from the .npy header alone)."""
    plain = dtype.fields is None and dtype.subdtype is None and not dtype.hasobject
    return plain and dtype.kind in "biuf" and (dtype.kind != "f" or dtype.itemsize in (4, 8))
