"""C ← κ·C − Aᵀ·B in place, as one GEMM of the OpenBLAS that NumPy itself loaded.

Plain SGD updates a Dense layer's stored W (fan_in, units) by W ← (1 − αλ)·W − a_prevᵀ·(αδ). With
`np.matmul` that is a GEMM into a gradient buffer and then a pass over W. With two BLAS threads that
pass reads a gradient half of which the other core wrote: it took 130 µs of a 540 µs MNIST step at
batch 32 (30 µs with one thread). GEMM's own β lets BLAS write the update into W, each thread
into its own block. With κ = 1 the numbers equal GEMM-then-subtract for sums of up to 128 rows
(measured); over longer sums OpenBLAS adds partial sums into C one by one, which moves the last
bits (float32, 256 × 128: 7.6e-6 on values up to 95 at k = 512, 3.1e-5 on values up to 205
at k = 2,048), so runs agree to rounding, not bit for bit.

NumPy does not expose β, so `subtract_product` calls `cblas_sgemm`/`cblas_dgemm` through ctypes,
from the library NumPy has already loaded (RTLD_NOLOAD: never a second copy with its own thread
pool, so threadpoolctl limits apply to these calls too). Only the ILP64 `scipy_openblas64_` build
that NumPy's wheels ship is recognised, because its symbol names fix the integer width; anything
else (another BLAS, another platform, a failed self-check at import) takes the NumPy path: a matmul
into the caller's scratch array and a subtraction.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FUSED_MIN_ELEMENTS", "LIBRARY", "fused_gemm_available", "subtract_product"]

Array = np.ndarray

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
# Below this many elements of c, the ctypes call (~5 µs with its pointer look-ups) costs more than
# the pass it saves: (128 × 10) 8.0 vs 2.9 µs, (128 × 128) 16.0 vs 12.7 µs, (256 × 128) 29 vs
# 28 µs at one thread and 18 vs 23 µs at two, batch 32. Small networks keep NumPy's matmul.
FUSED_MIN_ELEMENTS = 32_768
_SYMBOLS: dict[np.dtype[Any], str] = {np.dtype(np.float32): "scipy_cblas_sgemm64_",
                                      np.dtype(np.float64): "scipy_cblas_dgemm64_"}


def _numpy_openblas_paths() -> list[Path]:
    """Where NumPy's wheels keep their OpenBLAS: numpy.libs (Linux, Windows), numpy/.dylibs."""
    package = Path(np.__file__).resolve().parent
    folders = (package.parent / "numpy.libs", package / ".dylibs")
    return sorted(path for folder in folders if folder.is_dir()
                  for path in folder.glob("libscipy_openblas64_*"))


def _load_gemms() -> tuple[Path | None, dict[np.dtype[Any], Callable[..., None]]]:
    """The OpenBLAS NumPy has loaded and its cblas ?gemm by dtype, or (None, {})."""
    no_load = getattr(os, "RTLD_NOLOAD", None)
    if no_load is None:
        return None, {}
    for path in _numpy_openblas_paths():
        try:
            library = ctypes.CDLL(str(path), mode=no_load | os.RTLD_LOCAL)
            gemms: dict[np.dtype[Any], Any] = {
                dtype: getattr(library, name) for dtype, name in _SYMBOLS.items()}
        except (OSError, AttributeError):
            continue
        for dtype, gemm in gemms.items():
            real = ctypes.c_float if dtype == np.float32 else ctypes.c_double
            index, pointer = ctypes.c_int64, ctypes.c_void_p
            gemm.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, index, index, index,
                             real, pointer, index, pointer, index, real, pointer, index]
            gemm.restype = None
        return path, gemms
    return None, {}


LIBRARY, _GEMMS = _load_gemms()


def _fits(c: Array, a: Array, b: Array) -> bool:
    """Shapes, one dtype, rows with unit stride, a writable c that overlaps neither operand:
    what the GEMM call below assumes (NumPy raises or copies where BLAS would not)."""
    dtype, flags = c.dtype, c.flags
    if (a.dtype != dtype or b.dtype != dtype or not flags.c_contiguous or not flags.writeable
            or dtype not in _GEMMS or np.may_share_memory(c, a) or np.may_share_memory(c, b)):
        return False
    size = dtype.itemsize
    return (a.ndim == b.ndim == c.ndim == 2 and a.shape[0] == b.shape[0] > 0
            and c.shape == (a.shape[1], b.shape[1]) and a.strides[1] == size
            and b.strides[1] == size and a.strides[0] % size == 0 and b.strides[0] % size == 0
            and a.strides[0] >= a.shape[1] * size and b.strides[0] >= b.shape[1] * size)


def subtract_product(c: Array, a: Array, b: Array, *, keep: float = 1.0,
                     scratch: Array) -> None:
    """c ← keep·c − aᵀ·b in place; c (m, n), a (k, m), b (k, n) of one float dtype.

    `scratch` (shaped like c) is written only on the NumPy path, which small c always take.
    """
    if c.size >= FUSED_MIN_ELEMENTS and _fits(c, a, b):
        m, n = c.shape
        size = c.dtype.itemsize
        _GEMMS[c.dtype](_ROW_MAJOR, _TRANS, _NO_TRANS, m, n, a.shape[0], -1.0,
                        a.ctypes.data, a.strides[0] // size, b.ctypes.data, b.strides[0] // size,
                        keep, c.ctypes.data, n)
        return
    np.matmul(a.T, b, out=scratch)
    if keep != 1.0:
        c *= c.dtype.type(keep)
    c -= scratch


def _self_check() -> bool:
    """One small product through each GEMM against NumPy's; on any difference, use NumPy only."""
    rng = np.random.default_rng(0)
    m, n = 2, FUSED_MIN_ELEMENTS // 2
    for dtype in list(_GEMMS):
        a, b = rng.normal(size=(5, m)).astype(dtype), rng.normal(size=(5, n)).astype(dtype)
        c = rng.normal(size=(m, n)).astype(dtype)
        expected = np.float64(0.5) * c.astype(np.float64) - a.T.astype(np.float64) @ b
        scratch = np.zeros_like(c)
        subtract_product(c, a, b, keep=0.5, scratch=scratch)
        if scratch.any() or not np.allclose(c, expected, rtol=1e-5, atol=1e-5):
            _GEMMS.pop(dtype)
    return bool(_GEMMS)


def fused_gemm_available() -> bool:
    """Whether subtract_product runs as one BLAS call here (else it is matmul + subtract)."""
    return bool(_GEMMS)


_self_check()
