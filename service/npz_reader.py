"""An `.npz` upload → the arrays X and y, with every size checked before anything is allocated.

Order of checks, cheapest first: the file starts with a zip local header (so `np.load` cannot take
it for a bare `.npy`); the end-of-central-directory record declares at most `max_npz_members`
entries (read before `zipfile` builds one object per entry); each wanted member's `.npy` header
(read with `np.lib.format`) names a plain numeric dtype and a shape whose bytes match the member's
declared size and stay within `max_array_elements`; the member's compression ratio is at most
100:1. Only then does `np.load(..., allow_pickle=False)` read the member.

`y` may also hold class labels as fixed-width unicode strings (`<U…`/`>U…`, either byte order). Such
an element takes 4·width bytes, so besides the element count X and y together must fit in the bytes
`max_array_elements` float64 values would take, and a label may be at most `max_field_bytes`
characters wide (the limit of a CSV cell). After loading, every character must be a valid Unicode
code point (no surrogates, nothing above U+10FFFF): NumPy stores raw UCS-4 and does not check.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
import zlib
from typing import IO, BinaryIO

import numpy as np

from service.array_dtypes import (
    READABLE_DTYPES,
    READABLE_LABEL_DTYPES,
    readable_dtype,
    unicode_label_width,
)
from service.dataset_errors import DatasetError, cell_error
from service.settings import Settings

__all__ = ["MAX_COMPRESSION_RATIO", "read_npz_arrays"]

MAX_COMPRESSION_RATIO = 100
_RATIO_EXEMPT_BYTES = (
    1 << 20
)  # tiny members (all-zero label vectors) may compress better, harmlessly
_MAX_HEADER_BYTES = 10_000  # NumPy's own default cap on a .npy header
_ZIP_LOCAL_HEADER = b"PK\x03\x04"
_END_RECORD = struct.Struct(
    "<4s4H2LH"
)  # signature, disks, entries here, entries, size, offset, comment
_END_SIGNATURE = b"PK\x05\x06"
_CENTRAL_ENTRY_BYTES = 4096  # generous for "X.npy" plus zip64 extras
_MAX_ITEM_BYTES = 8  # the widest numeric element (float64, int64): the byte budget per element
_CODE_CHUNK = 1 << 20  # unicode code points checked per step (bounded temporary arrays)
_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    RuntimeError,
    NotImplementedError,
    struct.error,
)


def read_npz_arrays(binary: BinaryIO, *, limits: Settings) -> tuple[np.ndarray, np.ndarray]:
    """The members X and y of a NumPy `.npz` archive, as stored (dtypes checked, not cast)."""
    try:
        _check_end_record(binary, limits)
        with zipfile.ZipFile(binary) as archive:
            members = _wanted_members(archive, limits)
            sizes = [_check_member(archive, info, limits) for info in members]
            total = sum(elements for elements, _ in sizes)
            if total > limits.max_array_elements:
                raise DatasetError(
                    f"X and y hold {total} elements together; at most "
                    f"{limits.max_array_elements} are allowed"
                )
            total_bytes = sum(n for _, n in sizes)
            budget = limits.max_array_elements * _MAX_ITEM_BYTES
            if total_bytes > budget:  # only unicode labels are wider than 8 bytes an element
                raise DatasetError(
                    f"X and y take {total_bytes} bytes together; at most {budget} are allowed "
                    "(shorten the labels of y)"
                )
            X, y = _load(archive, members[0]), _load(archive, members[1])
            if y.dtype.kind == "U":
                _check_code_points(y, "y.npy")
            return X, y
    except DatasetError:
        raise
    except _READ_ERRORS as exc:
        raise DatasetError(f"not a readable .npz archive ({type(exc).__name__})") from None


def _check_end_record(binary: BinaryIO, limits: Settings) -> None:
    binary.seek(0)
    if binary.read(4) != _ZIP_LOCAL_HEADER:
        raise DatasetError("not an .npz file: it does not start with a zip header")
    size = binary.seek(0, io.SEEK_END)
    tail_length = min(size, _END_RECORD.size + 0xFFFF)  # the record plus the longest zip comment
    binary.seek(size - tail_length)
    tail = binary.read(tail_length)
    at = tail.rfind(_END_SIGNATURE)
    if at < 0 or at + _END_RECORD.size > len(tail):
        raise DatasetError("not an .npz file: the zip directory is missing (truncated upload?)")
    entries, directory_bytes = _END_RECORD.unpack_from(tail, at)[4:6]
    if entries > limits.max_npz_members or directory_bytes > _CENTRAL_ENTRY_BYTES * entries:
        raise DatasetError(
            f"the archive declares {entries} members; at most {limits.max_npz_members} are allowed"
        )
    binary.seek(0)


def _wanted_members(archive: zipfile.ZipFile, limits: Settings) -> tuple[zipfile.ZipInfo, ...]:
    infos = archive.infolist()
    names = [info.filename for info in infos]
    if len(infos) > limits.max_npz_members:
        raise DatasetError(f"{len(infos)} members; at most {limits.max_npz_members} are allowed")
    if len(set(names)) != len(names):
        raise DatasetError("the archive holds two members with the same name")
    missing = [name for name in ("X.npy", "y.npy") if name not in names]
    if missing:
        raise DatasetError(
            f"the archive lacks {' and '.join(missing)}; save it with np.savez(path, X=X, y=y)"
        )
    return archive.getinfo("X.npy"), archive.getinfo("y.npy")


def _check_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Settings
) -> tuple[int, int]:
    """Read only the member's .npy header; return its elements and bytes once every bound holds."""
    name = info.filename
    with archive.open(info) as member:
        shape, dtype = _read_header(member, name)
        header_bytes = member.tell()
    _check_dtype(dtype, name, limits)
    elements = math.prod(shape)
    if elements > limits.max_array_elements:
        raise DatasetError(
            f"{name} declares shape {shape} ({elements} elements); at most "
            f"{limits.max_array_elements} are allowed"
        )
    if header_bytes + elements * dtype.itemsize != info.file_size:
        raise DatasetError(f"{name} declares shape {shape} but holds {info.file_size} bytes")
    ratio_applies = info.file_size > _RATIO_EXEMPT_BYTES
    if ratio_applies and info.file_size > MAX_COMPRESSION_RATIO * max(1, info.compress_size):
        raise DatasetError(f"{name} expands more than {MAX_COMPRESSION_RATIO}:1 (a zip bomb?)")
    return elements, elements * dtype.itemsize


def _read_header(member: IO[bytes], name: str) -> tuple[tuple[int, ...], np.dtype]:
    try:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member, _MAX_HEADER_BYTES)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(member, _MAX_HEADER_BYTES)
        else:
            raise DatasetError(f"{name} uses .npy format {version}; save with a current NumPy")
    except DatasetError:
        raise
    except (ValueError, EOFError, SyntaxError) as exc:
        raise DatasetError(f"{name} is not a valid .npy array ({type(exc).__name__})") from None
    return tuple(int(n) for n in shape), np.dtype(dtype)


def _check_dtype(dtype: np.dtype, name: str, limits: Settings) -> None:
    if readable_dtype(dtype):
        return
    width = unicode_label_width(dtype)
    if name != "y.npy":
        only_y = " (strings only as the class labels of y)" if width is not None else ""
        raise DatasetError(
            f"{name} has dtype {dtype.str}; only {READABLE_DTYPES} arrays are read{only_y}"
        )
    if width is None:
        raise DatasetError(f"y.npy has dtype {dtype.str}; only {READABLE_LABEL_DTYPES} are read")
    if width < 1:
        raise DatasetError(f"y.npy has dtype {dtype.str}: its labels are all empty")
    if width > limits.max_field_bytes:
        raise DatasetError(
            f"y.npy has dtype {dtype.str}: labels {width} characters wide; at most "
            f"{limits.max_field_bytes} characters per label are allowed",
            [{"loc": ["y"], "msg": "labels too wide", "width": width}],
        )


def _check_code_points(y: np.ndarray, name: str) -> None:
    """Refuse surrogates and values above U+10FFFF: NumPy would turn them into broken strings."""
    width = y.dtype.itemsize // 4
    code_dtype = np.dtype(np.uint32).newbyteorder(y.dtype.byteorder)
    codes = np.ascontiguousarray(y).reshape(-1).view(code_dtype)
    per_row = width * (math.prod(y.shape[1:]) if y.ndim > 1 else 1)
    for start in range(0, codes.size, _CODE_CHUNK):
        part = codes[start : start + _CODE_CHUNK]
        bad = np.flatnonzero((part > 0x10FFFF) | ((part >= 0xD800) & (part <= 0xDFFF)))
        if bad.size:
            at = start + int(bad[0])
            row = at // per_row + 1
            msg = f"{name} holds U+{int(codes[at]):X}, which is not a valid character"
            raise cell_error(msg, row=row, loc=["y", row - 1])


def _load(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    with archive.open(info) as member:
        array = np.load(member, allow_pickle=False)
    return np.asarray(array)
