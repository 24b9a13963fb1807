"""subtract_product: c ← keep·c − aᵀb in place, through NumPy's own OpenBLAS or NumPy itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from engine import blas
from engine.blas import fused_gemm_available, subtract_product

TOLERANCE = {"float32": 2e-6, "float64": 1e-14}


def _operands(dtype: str, k: int = 7, m: int = 5, n: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    a, b, c = (rng.normal(size=shape).astype(dtype) for shape in ((k, m), (k, n), (m, n)))
    return a, b, c


def _expected(c: np.ndarray, a: np.ndarray, b: np.ndarray, keep: float) -> np.ndarray:
    wide = np.float64
    return keep * c.astype(wide) - a.astype(wide).T @ b.astype(wide)


def test_the_blas_numpy_loaded_is_the_one_used_here() -> None:
    # Keyed on what is loaded, not on blas.py's file-name pattern: if a NumPy wheel renamed its
    # OpenBLAS, the fused path (and the tests that skip without it) would go quietly otherwise.
    package = Path(np.__file__).resolve().parent
    bundled = [info for info in threadpool_info() if info["internal_api"] == "openblas"
               and Path(info["filepath"]).resolve().parent in (package.parent / "numpy.libs",
                                                                package / ".dylibs")]
    if not bundled:
        pytest.skip("this NumPy bundles no OpenBLAS (another BLAS): the NumPy path is used")
    assert fused_gemm_available()
    loaded = {info["filepath"] for info in threadpool_info() if info["user_api"] == "blas"}
    assert str(blas.LIBRARY) in loaded  # the same library (and thread pool), never a second copy


@pytest.fixture
def any_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let products of any size take the BLAS path (normally only c of ≥ 32,768 elements)."""
    monkeypatch.setattr(blas, "FUSED_MIN_ELEMENTS", 0)


@pytest.mark.parametrize("fused", [True, False], ids=["blas-beta", "numpy"])
@pytest.mark.parametrize("keep", [1.0, 0.97])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_subtract_product_in_place(dtype: str, keep: float, fused: bool,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    if not fused:
        monkeypatch.setattr(blas, "_GEMMS", {})
    elif not fused_gemm_available():
        pytest.skip("no NumPy-bundled OpenBLAS here: only the NumPy path exists")
    a, b, c = _operands(dtype, m=64, n=blas.FUSED_MIN_ELEMENTS // 64)
    expected = _expected(c, a, b, keep)
    target, scratch = c, np.zeros_like(c)
    subtract_product(c, a, b, keep=keep, scratch=scratch)
    assert c is target and c.dtype == np.dtype(dtype)
    np.testing.assert_allclose(c, expected, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])
    assert scratch.any() != fused  # one GEMM wrote c; scratch is for the NumPy path only


def test_small_products_take_the_numpy_path() -> None:
    a, b, c = _operands("float32")
    expected, scratch = _expected(c, a, b, 1.0), np.zeros_like(c)
    subtract_product(c, a, b, scratch=scratch)
    assert scratch.any()  # the ctypes call would cost more than the pass it saves
    np.testing.assert_allclose(c, expected, rtol=2e-6, atol=2e-6)


@pytest.mark.usefixtures("any_size")
def test_row_slices_and_wide_buffers_are_read_with_their_row_stride() -> None:
    a_wide, b_wide, c = _operands("float32", m=9, n=8)
    a, b = a_wide[2:, :5], b_wide[2:, :6]  # rows of a wider buffer: lda > m
    c = c[:5, :6].copy()
    expected, scratch = _expected(c, a, b, 1.0), np.zeros_like(c)
    subtract_product(c, a, b, scratch=scratch)
    np.testing.assert_allclose(c, expected, rtol=2e-6, atol=2e-6)
    assert not scratch.any() or not fused_gemm_available()


@pytest.mark.usefixtures("any_size")
@pytest.mark.parametrize("case", ["reversed rows", "column step", "mixed dtypes",
                                  "c not contiguous", "no rows"])
def test_operands_blas_cannot_take_fall_back_to_numpy(case: str) -> None:
    a, b, c = _operands("float64")
    if case == "reversed rows":
        a, b = a[::-1], b[::-1]
    elif case == "column step":
        a = np.ascontiguousarray(np.repeat(a, 2, axis=1))[:, ::2]
    elif case == "mixed dtypes":
        b = b.astype(np.float32)
    elif case == "c not contiguous":
        c = np.asfortranarray(c)
    else:
        a, b = a[:0], b[:0]
    expected, scratch = _expected(c, a, b, 0.5), np.zeros(c.shape, dtype=c.dtype)
    subtract_product(c, a, b, keep=0.5, scratch=scratch)
    np.testing.assert_allclose(c, expected, rtol=1e-6, atol=1e-6)
    assert scratch.any() or case == "no rows"  # NumPy did it (an empty product is all zeros)


@pytest.mark.usefixtures("any_size")
def test_an_operand_that_overlaps_c_is_read_before_c_changes() -> None:
    rng = np.random.default_rng(3)
    c = rng.normal(size=(6, 6))
    a, b = c[:4], rng.normal(size=(4, 6))  # a is the first rows of c itself
    expected = _expected(c, a.copy(), b, 1.0)
    subtract_product(c, a, b, scratch=np.empty_like(c))  # BLAS would read rows it already wrote
    np.testing.assert_allclose(c, expected, rtol=1e-13, atol=1e-13)


@pytest.mark.usefixtures("any_size")
def test_a_read_only_c_is_refused_not_written() -> None:
    a, b, c = _operands("float64")
    c.flags.writeable = False
    before = c.copy()
    with pytest.raises(ValueError, match="read-only"):
        subtract_product(c, a, b, scratch=np.empty(c.shape))
    np.testing.assert_array_equal(c, before)
