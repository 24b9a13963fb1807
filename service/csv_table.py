"""A CSV upload → float64 features and raw target cells, bounded before anything grows.

The stdlib `csv` module does the tokenizing; this module bounds it: each physical line is read
with a length cap (so a file without newlines cannot become one giant string),
`csv.field_size_limit` caps quoted fields, and rows, columns and cells are counted as they arrive.
Features land in float64 blocks of about 8 MiB, never in a list of Python floats.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from service.dataset_errors import DatasetError, cell_error
from service.settings import Settings

__all__ = ["CsvTable", "csv_number", "read_csv_table"]

_BLOCK_ELEMENTS = 1 << 20  # 8 MiB of float64 per block, whatever the width
_CHARS_PER_NUMBER = 32  # "-1.2345678901234567e-308," fits; used to cap one physical line


@dataclass(frozen=True)
class CsvTable:
    feature_names: list[str]
    target_name: str
    X: np.ndarray  # float64 (n_samples, n_features), finite
    target_cells: list[str]


def read_csv_table(binary: BinaryIO, *, target: str | None, limits: Settings) -> CsvTable:
    """Read a UTF-8 CSV (BOM allowed) whose first line is the header, from the current position."""
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    try:
        return _read_rows(text, target=target, limits=limits)
    except UnicodeDecodeError as exc:
        raise DatasetError(f"the file is not UTF-8 text (byte {exc.start} of a chunk)") from None
    finally:
        text.detach()  # the caller owns the binary file


def _read_rows(text: io.TextIOWrapper, *, target: str | None, limits: Settings) -> CsvTable:
    csv.field_size_limit(limits.max_field_bytes)
    reader = csv.reader(_bounded_lines(text, _max_line_chars(limits)), strict=True)
    header = _read_header(reader, limits)
    target_index = _target_index(header, target)
    feature_names = [name for j, name in enumerate(header) if j != target_index]
    blocks = _FeatureBlocks(feature_names, limits)
    target_cells: list[str] = []
    try:
        for cells in reader:
            if not cells:
                continue  # blank line
            row = len(target_cells) + 1
            _check_row_shape(cells, header, row, limits)
            target_cells.append(_target_cell(cells[target_index], header[target_index], row))
            blocks.append(cells[:target_index] + cells[target_index + 1 :], row)
    except csv.Error as exc:
        raise cell_error(f"malformed CSV: {exc}", row=len(target_cells) + 1) from None
    if not target_cells:
        raise DatasetError("the CSV has a header but no data rows")
    return CsvTable(feature_names, header[target_index], blocks.stack(), target_cells)


def _max_line_chars(limits: Settings) -> int:
    return limits.max_field_bytes + _CHARS_PER_NUMBER * limits.max_columns


def _bounded_lines(text: io.TextIOWrapper, max_chars: int) -> Iterator[str]:
    line_no = 0
    while line := text.readline(max_chars + 1):
        line_no += 1
        if len(line) > max_chars:
            raise DatasetError(f"line {line_no} is longer than {max_chars} characters")
        yield line


def _read_header(reader: Iterator[list[str]], limits: Settings) -> list[str]:
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise DatasetError("the file is empty; a CSV needs a header line and data rows") from None
    except csv.Error as exc:
        raise DatasetError(f"malformed CSV header: {exc}") from None
    if len(header) > limits.max_columns:
        raise DatasetError(f"{len(header)} columns; at most {limits.max_columns} are allowed")
    if len(header) < 2:
        raise DatasetError("a CSV needs at least two columns: features and a target")
    _check_header_names(header)
    return header


def _check_header_names(header: list[str]) -> None:
    seen: dict[str, int] = {}
    for j, name in enumerate(header, start=1):
        if not name:
            raise cell_error(f"header column {j} has no name", column=f"#{j}")
        if name in seen:
            raise cell_error(f"duplicated header name (also column {seen[name]})", column=name)
        seen[name] = j
    if all(_is_number(name) for name in header):
        raise DatasetError("the first line looks like data; the CSV needs a header line of names")


def _target_index(header: list[str], target: str | None) -> int:
    if target is None:
        return len(header) - 1
    if target in header:
        return header.index(target)
    shown = ", ".join(repr(name) for name in header[:20])
    raise DatasetError(
        f"target column {target!r} is not in the header"
        f" ({shown}{', …' if len(header) > 20 else ''})",
        [{"loc": ["target"], "msg": "unknown column", "column": target}],
    )


def _check_row_shape(cells: list[str], header: list[str], row: int, limits: Settings) -> None:
    if row > limits.max_rows:
        raise cell_error(f"more than {limits.max_rows} rows", row=row)
    if len(cells) != len(header):
        raise cell_error(f"{len(cells)} cells but the header has {len(header)} columns", row=row)


def _target_cell(cell: str, column: str, row: int) -> str:
    cell = cell.strip()
    if not cell:
        raise cell_error("empty target cell", row=row, column=column)
    return cell


def csv_number(cell: str) -> float:
    """A CSV cell as a float, in the plain ASCII notation other CSV readers accept."""
    if _python_only_notation(cell):
        raise ValueError(f"{cell!r} is not a plain number")
    return float(cell)


def _python_only_notation(text: str) -> bool:
    """Python's float() also takes digit-group underscores ("1_000") and non-ASCII digits ("١٢");
    pandas, R and spreadsheets read those as text, so we refuse them rather than guess."""
    return "_" in text or not text.isascii()


def _is_number(cell: str) -> bool:
    try:
        csv_number(cell)
    except ValueError:
        return False
    return True


class _FeatureBlocks:
    """Rows of feature cells → float64 blocks; each block is checked for finiteness when full."""

    def __init__(self, names: list[str], limits: Settings) -> None:
        self.names = names
        self.max_rows = max(1, limits.max_array_elements // len(names))
        self.block_rows = max(1, _BLOCK_ELEMENTS // len(names))
        self.blocks: list[np.ndarray] = []
        self.filled = self.block_rows  # forces a new block on the first row
        self.first_row = 1

    def append(self, cells: list[str], row: int) -> None:
        if row > self.max_rows:
            raise cell_error(
                f"more than {self.max_rows} rows of {len(self.names)} features", row=row
            )
        if self.filled == self.block_rows:
            self._close_block()
            self.blocks.append(np.empty((self.block_rows, len(self.names)), dtype=np.float64))
            self.filled, self.first_row = 0, row
        try:
            if _python_only_notation("".join(cells)):  # once per row, not once per cell
                raise ValueError(cells)
            self.blocks[-1][self.filled] = list(map(float, cells))
        except (ValueError, OverflowError):
            raise self._locate_bad_cell(cells, row) from None
        self.filled += 1

    def stack(self) -> np.ndarray:
        self._close_block()
        return np.concatenate(self.blocks, axis=0) if len(self.blocks) > 1 else self.blocks[0]

    def _close_block(self) -> None:
        if not self.blocks:
            return
        self.blocks[-1] = block = self.blocks[-1][: self.filled]
        bad = np.argwhere(~np.isfinite(block))
        if bad.size:
            i, j = (int(k) for k in bad[0])
            msg = f"{block[i, j]} is not a finite number"
            raise cell_error(msg, row=self.first_row + i, column=self.names[j])

    def _locate_bad_cell(self, cells: list[str], row: int) -> DatasetError:
        for name, cell in zip(self.names, cells, strict=True):
            if not _is_number(cell):
                what = "empty cell" if not cell.strip() else f"{cell[:40]!r} is not a number"
                return cell_error(what, row=row, column=name)
        return cell_error("a cell is not a number", row=row)
