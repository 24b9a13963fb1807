"""Keep freed memory for reuse in the API process (glibc malloc), so big bodies do not page-fault.

A 1,000 × 784 prediction receives 6.6 MB in ~25 socket chunks and builds several arrays of that
size. With glibc's defaults the freed memory goes back to the kernel between requests (large
blocks are mmap'ed; the heap top is trimmed), so every request faults its pages in again: reading
that body took 9.6 ms after a prediction against 3.4 ms with memory kept (bench/results/NOTES.md).
Blocks up to 32 MiB (glibc's maximum) come from the heap and up to 128 MiB of free heap is kept,
so the process holds on to at most that much memory it no longer uses. Other C libraries: no-op.
"""

from __future__ import annotations

import ctypes

__all__ = ["MMAP_THRESHOLD_BYTES", "TRIM_THRESHOLD_BYTES", "keep_freed_memory"]

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 128 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; False where there is no mallopt."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # the C library already loaded
    if mallopt is None:  # e.g. macOS or musl without it
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
