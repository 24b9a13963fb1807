"""Browser-proofing as pure ASGI middleware: Host allowlist, foreign Origin, media types, headers.

Loopback is not a boundary: a page in the operator's browser can reach 127.0.0.1 through DNS
rebinding (Ray CVE-2025-62593, MLflow CVE-2025-14279) or a cross-site "simple" request with a
`text/plain` body (MLflow CVE-2023-43472). So, with allowlists only:

    KeylessLoopback   without API keys, a connection that reached a non-loopback address of this
                      server, or a request a proxy forwarded → 403 (uvicorn run by hand on
                      0.0.0.0 skips `serve`'s bind check; a local proxy connects on loopback)
    HostAllowlist     Host must be a loopback name, the bind host or FEEDFORWARD_ALLOWED_HOSTS → 400
    OriginGuard       a state-changing request whose Origin is neither this server nor a configured
                      CORS origin → 403
    MediaTypeGuard    a request body must be application/json (POST /v1/datasets: also
                      multipart/form-data) → 415
    SecurityHeaders   nosniff, no framing, no referrer on every response

Each guard answers with an RFC 9457 problem document and never reads the request body. Checks of
the body (media type here, size in body_limit) apply only to requests the router would serve:
anything else goes on to the router, whose 405 (with `Allow`) or 404 is the true answer.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.problems import problem_response
from service.security_checks import ip_address_of

__all__ = [
    "HEALTH_PATHS",
    "LOOPBACK_HOSTS",
    "SAFE_METHODS",
    "HostAllowlist",
    "KeylessLoopback",
    "MediaTypeGuard",
    "OriginGuard",
    "SecurityHeaders",
    "host_name",
    "media_type",
    "router_serves",
]

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HEALTH_PATHS = frozenset({"/healthz", "/readyz"})  # probes from orchestrators use pod IPs as Host
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)


def host_name(host_header: str) -> str:
    """`Host` value without port, brackets or trailing dot, lower-cased: "[::1]:80" → "::1"."""
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else ""
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def media_type(content_type: str | None) -> str:
    """Content-Type without parameters, lower-cased: "Text/CSV; charset=utf-8" → "text/csv"."""
    return (content_type or "").split(";", 1)[0].strip().lower()


async def _reject(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    response = problem_response(status, detail=detail)
    await response(scope, receive, send)


class KeylessLoopback:
    """403 for a connection to a non-loopback address while no API key is configured.

    `feedforward serve` refuses such a bind before it starts; `uvicorn service.app:app --host
    0.0.0.0` never asks us. The address the client connected to (ASGI `server`) decides, not the
    Host header, which any non-browser client sets as it likes. A request a proxy forwarded
    (Forwarded, X-Forwarded-For, X-Real-IP) is refused too: a proxy on this host reaches us on
    loopback on behalf of anyone. Probes stay answered (they reveal nothing and orchestrators call
    them on the pod's address).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        probe = scope["type"] != "http" or scope["path"] in HEALTH_PATHS
        why = "" if probe else _not_local(scope)
        if why:
            detail = (f"this server has no API keys, so it does not answer {why}; set "
                      'FEEDFORWARD_API_KEYS="owner:key,..." to serve them')
            await _reject(scope, receive, send, 403, detail)
            return
        await self.app(scope, receive, send)


_FORWARDING_HEADERS = frozenset({b"forwarded", b"x-forwarded-for", b"x-real-ip"})


def _not_local(scope: Scope) -> str:
    """Why a request may come from elsewhere ("" when it is local). The server address is an IP
    from the socket (None on a Unix socket: local by construction); a name there comes only from
    in-process test transports ("testserver")."""
    server = scope.get("server")
    address = None if server is None else ip_address_of(str(server[0]))
    if address is not None and not address.is_loopback:
        return "connections to non-loopback addresses"
    if any(name in _FORWARDING_HEADERS for name, _ in scope["headers"]):
        return "requests a proxy forwarded"
    return ""


class HostAllowlist:
    """400 unless the Host header names this server (defeats DNS rebinding)."""

    def __init__(self, app: ASGIApp, *, allowed: Collection[str]) -> None:
        self.app = app
        self.allowed = frozenset(host_name(h) for h in allowed) | LOOPBACK_HOSTS
        self.any_host = "*" in allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.any_host or scope["path"] in HEALTH_PATHS:
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host", "")
        if host_name(host) not in self.allowed:
            detail = "unknown Host header; add it to FEEDFORWARD_ALLOWED_HOSTS if it is ours"
            await _reject(scope, receive, send, 400, detail)
            return
        await self.app(scope, receive, send)


class OriginGuard:
    """403 for a state-changing request sent by a page of another origin."""

    def __init__(self, app: ASGIApp, *, cors_origins: Collection[str]) -> None:
        self.app = app
        self.cors_origins = frozenset(o.rstrip("/").lower() for o in cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if origin is not None and not self._trusted(origin, headers.get("host", "")):
                detail = "cross-origin requests that change state are refused"
                await _reject(scope, receive, send, 403, detail)
                return
        await self.app(scope, receive, send)

    def _trusted(self, origin: str, host: str) -> bool:
        origin = origin.strip().rstrip("/").lower()
        if origin in self.cors_origins:
            return True
        same_server = urlsplit(origin).netloc
        return bool(same_server) and same_server == host.strip().lower()


class MediaTypeGuard:
    """415 unless a request body has one of the media types its route reads.

    Only requests the router would serve are checked, so a method a path does not serve still gets
    the router's 405 with `Allow` (e.g. TRACE /v1/jobs with a multipart body) and an unknown path
    its 404.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        router: Router,
        default: Collection[str],
        by_route: Mapping[tuple[str, str], Collection[str]],
    ) -> None:
        self.app = app
        self.router = router
        self.default = frozenset(default)
        self.by_route = {route: frozenset(types) for route, types in by_route.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            headers = Headers(scope=scope)
            if _has_body(headers) and router_serves(self.router, scope):
                accepted = self.by_route.get((scope["method"], scope["path"]), self.default)
                if media_type(headers.get("content-type")) not in accepted:
                    detail = f"send the body as {' or '.join(sorted(accepted))}"
                    await _reject(scope, receive, send, 415, detail)
                    return
        await self.app(scope, receive, send)


def router_serves(router: Router, scope: Scope) -> bool:
    """Whether a route takes this method on this path (else the router answers 405 or 404)."""
    return any(route.matches(scope)[0] is Match.FULL for route in router.routes)


def _has_body(headers: Headers) -> bool:
    return "transfer-encoding" in headers or headers.get("content-length", "0").strip() != "0"


class SecurityHeaders:
    """Adds nosniff / DENY framing / no-referrer to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
