"""Multipart form parsing with a bound on every part's headers (RELIABILITY L2: 16 KiB).

Starlette bounds the number of parts and the size of non-file fields; python-multipart bounds each
header line, but a part may still carry several long headers. This parser adds up a part's header
bytes and refuses the request (400) as soon as they pass the bound, before buffering more.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

__all__ = ["MAX_PART_HEADER_BYTES", "bounded_form"]

MAX_PART_HEADER_BYTES = 16 * 1024


class _BoundedMultiPartParser(MultiPartParser):
    _header_bytes = 0

    def on_part_begin(self) -> None:
        super().on_part_begin()
        self._header_bytes = 0

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        super().on_header_field(data, start, end)

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        super().on_header_value(data, start, end)

    def _count_header(self, n_bytes: int) -> None:
        self._header_bytes += n_bytes
        if self._header_bytes > MAX_PART_HEADER_BYTES:
            raise MultiPartException(
                f"a part's headers exceed the limit of {MAX_PART_HEADER_BYTES} bytes"
            )


@asynccontextmanager
async def bounded_form(
    request: Request, *, max_files: int, max_fields: int, max_part_size: int
) -> AsyncIterator[FormData]:
    """Like `request.form(...)`, with part headers bounded; files are closed on exit."""
    parser = _BoundedMultiPartParser(
        request.headers, request.stream(), max_files=max_files, max_fields=max_fields,
        max_part_size=max_part_size,
    )
    try:
        form = await parser.parse()
    except MultiPartException as error:
        raise HTTPException(status_code=400, detail=error.message) from error
    try:
        yield form
    finally:
        await form.close()
