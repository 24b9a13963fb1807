"""Hostile payloads shared by the in-process and live proofs: pickles with a canary, bad NPZs.

Building them needs pickle and allow_pickle=True; only tests do that, never the service.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np

from tests.reliability.reliability_helpers import npz_bytes

__all__ = [
    "Canary",
    "hostile_npz_corpus",
    "npy_with_object_array",
    "npz_with_pickled_member",
    "pickled",
]


class Canary:
    """Unpickling this creates the file at `path` (a stand-in for arbitrary code)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def pickled(canary: Path) -> bytes:
    return pickle.dumps(Canary(canary), protocol=4)


def npy_with_object_array(canary: Path) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.array([Canary(canary)], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def npz_with_pickled_member(canary: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("X.npy", npy_with_object_array(canary))
        archive.writestr("y.npy", npy_with_object_array(canary))
    return buffer.getvalue()


def _npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False,
                                                  "shape": shape})  # fmt: skip
    return buffer.getvalue()


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def hostile_npz_corpus(canary: Path) -> dict[str, bytes]:
    labels = npz_bytes(y=np.arange(4) % 2)
    bomb = _zip({"X.npy": _npy_header((1 << 24, 1)) + bytes(8 << 24), "y.npy": labels},
                zipfile.ZIP_DEFLATED)  # fmt: skip
    return {
        "object array": npz_with_pickled_member(canary),
        "129-byte npy declaring 2**40 elements": _zip(
            {"X.npy": (_npy_header((1 << 40,)) + b"\0")[:129], "y.npy": labels}),
        "zip bomb (128 MiB of zeros)": bomb,
        "nine members": _zip({f"m{i}.npy": _npy_header((1,)) + bytes(8) for i in range(9)}),
        "complex dtype": npz_bytes(X=np.ones((4, 2), dtype=np.complex128), y=np.arange(4) % 2),
        "truncated zip": npz_bytes(X=np.ones((4, 2)), y=np.arange(4) % 2)[:-40],
    }  # fmt: skip
