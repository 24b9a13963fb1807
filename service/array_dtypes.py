"""The dtypes uploaded arrays may have (.npz datasets, `inputs_npy` predictions): one rule for both.

Bool, signed and unsigned integers, float32 and float64 — plain arrays only (no structured, object
or sub-array dtypes). float16 and complex are refused with the same message everywhere: the engine
trains in float32 or float64, and a half-precision upload is more likely a mistake than a wish.

Class labels (the `y` of an `.npz` dataset, nothing else) may also be fixed-width unicode strings
(`<U…` or `>U…`, NumPy's `np.array(["cat", "dog"])`): they load without pickle, like numbers.
Byte strings (`S`) stay refused — their encoding is unknown — and so do object arrays (pickle).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "READABLE_DTYPES",
    "READABLE_LABEL_DTYPES",
    "readable_dtype",
    "unicode_label_width",
]

READABLE_DTYPES = "bool, integer, float32 and float64"
READABLE_LABEL_DTYPES = f"{READABLE_DTYPES} (or unicode strings, dtype <U…, as class labels)"


def readable_dtype(dtype: np.dtype) -> bool:
    """Whether an uploaded array of this dtype is read (checked from the .npy header alone)."""
    numeric = dtype.kind in "biu" or (dtype.kind == "f" and dtype.itemsize in (4, 8))
    return _plain(dtype) and numeric


def unicode_label_width(dtype: np.dtype) -> int | None:
    """Characters per element of a plain unicode dtype (`<U…` or `>U…`), else None."""
    if _plain(dtype) and dtype.kind == "U":
        return dtype.itemsize // 4  # NumPy stores UCS-4: four bytes per character
    return None


def _plain(dtype: np.dtype) -> bool:
    return dtype.fields is None and dtype.subdtype is None and not dtype.hasobject
