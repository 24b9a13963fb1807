"""Request body limit as pure ASGI middleware: 413 without ever holding more than the limit.

uvicorn has no body-size option, and a chunked request carries no Content-Length, so the limit
is enforced twice: a declared Content-Length above the limit is refused before the body is read
(unless no route serves the method and path: then the router's 405 or 404, which reads no body,
is the truer answer); otherwise `receive` is wrapped and counts bytes as the app pulls them,
raising BodyTooLarge (an HTTPException, so FastAPI's body parsing and Starlette's form parser let
it through to the problem handlers) as soon as the count passes the limit.

Limits: multipart uploads to POST /v1/datasets get `max_upload_bytes` (Starlette spools the file
part to disk); every other body, JSON uploads included, gets `max_json_bytes`, because JSON is
parsed in memory. A JSON body without Content-Length is first spooled (memory up to 1 MiB, then a
temporary file) and only replayed to the app once it is known to fit, so rejecting it never holds
more than the spool's memory part (the app would otherwise buffer up to the limit before the count
passes it).
"""

from __future__ import annotations

import tempfile
from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.routing import Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.problems import problem_response
from service.request_guards import media_type, router_serves

__all__ = ["BodyLimit", "BodyTooLarge"]


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {limit} bytes")


class BodyLimit:
    def __init__(
        self,
        app: ASGIApp,
        *,
        router: Router,
        default_bytes: int,
        upload_bytes: int,
        upload_routes: Collection[tuple[str, str]],
        upload_media_types: Collection[str],
    ) -> None:
        self.app = app
        self.router = router
        self.default_bytes = default_bytes
        self.upload_bytes = upload_bytes
        self.upload_routes = frozenset(upload_routes)
        self.upload_media_types = frozenset(upload_media_types)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        upload = self._is_upload(scope, headers)
        limit = self.upload_bytes if upload else self.default_bytes
        hint = "" if upload or (scope["method"], scope["path"]) not in self.upload_routes else (
            f"; a bigger dataset goes as a multipart file (CSV or .npz, up to "
            f"{self.upload_bytes} bytes), which is streamed instead of parsed whole")
        declared = headers.get("content-length", "")
        if (declared.isascii() and declared.isdigit() and int(declared) > limit
                and router_serves(self.router, scope)):
            await _too_large(scope, receive, send, limit, hint)
            return
        chunked_json = not declared and not upload and scope["method"] in BODY_METHODS
        if chunked_json and router_serves(self.router, scope):
            spooled = await _spool(receive, limit)
            if spooled is None:
                await _too_large(scope, receive, send, limit, hint)
                return
            receive = _replay(spooled, receive)
        started = False

        async def counting_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, _counting_receive(receive, limit), counting_send)
        except BodyTooLarge:
            if started:
                raise
            await _too_large(scope, receive, send, limit, hint)

    def _is_upload(self, scope: Scope, headers: Headers) -> bool:
        """A multipart dataset upload (Starlette spools its file part to disk)."""
        route = (scope["method"], scope["path"])
        return (
            route in self.upload_routes
            and media_type(headers.get("content-type")) in self.upload_media_types
        )


def _counting_receive(receive: Receive, limit: int) -> Receive:
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
        return message

    return counted


BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
SPOOL_MEMORY_BYTES = 1024 * 1024
REPLAY_CHUNK_BYTES = 64 * 1024


async def _spool(receive: Receive, limit: int) -> tempfile.SpooledTemporaryFile[bytes] | None:
    """The whole body in a spooled file, or None as soon as it passes the limit."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)
    received, more = 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            spool.close()
            return None
        spool.write(chunk)
        more = message.get("more_body", False)
    spool.seek(0)
    return spool


def _replay(spool: tempfile.SpooledTemporaryFile[bytes], receive: Receive) -> Receive:
    """The spooled body in chunks, then the connection's own messages (http.disconnect)."""

    async def replay() -> Message:
        if spool.closed:
            return await receive()
        chunk = spool.read(REPLAY_CHUNK_BYTES)
        more = len(chunk) == REPLAY_CHUNK_BYTES
        if not more:
            spool.close()
        return {"type": "http.request", "body": chunk, "more_body": more}

    return replay


async def _too_large(
    scope: Scope, receive: Receive, send: Send, limit: int, hint: str = ""
) -> None:
    response = problem_response(
        413,
        detail=f"the request body is larger than the limit of {limit} bytes{hint}",
        headers={"Connection": "close"},  # the unread rest of the body must not become a request
    )
    await response(scope, receive, send)
