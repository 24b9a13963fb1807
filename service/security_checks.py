"""Start-up refusals: a server reachable from the network must require API keys.

ShadowRay (CVE-2023-48022) was a job API bound to 0.0.0.0 without authentication. We refuse that
combination before binding: `check_bind` raises InsecureBindError, a SystemExit, so the process
ends non-zero with the message on stderr and no traceback even if no caller catches it.
"""

from __future__ import annotations

import ipaddress

from service.settings import Settings

__all__ = ["InsecureBindError", "check_bind", "ip_address_of", "is_loopback"]


class InsecureBindError(SystemExit):
    """Raised (and, uncaught, exits with status 1) for a non-loopback bind without API keys."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1, and 127.x as IPv4-mapped
    IPv6, which a dual-stack socket reports); hostnames are not resolved."""
    name = host.strip().strip("[]").lower().rstrip(".")
    if name == "localhost":
        return True
    address = ip_address_of(name)
    return address is not None and address.is_loopback


def ip_address_of(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address `host` spells (IPv4-mapped IPv6 unwrapped to IPv4), or None for a name."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def check_bind(settings: Settings, host: str | None = None) -> None:
    """Refuse a non-loopback `host` (default: settings.host) when no API key is configured."""
    host = settings.host if host is None else host
    if is_loopback(host) or settings.api_key_owners:
        return
    raise InsecureBindError(
        f"refusing to listen on {host!r} without API keys: anyone who can reach this address could "
        'upload data and run jobs. Set FEEDFORWARD_API_KEYS="owner:key,..." (clients then send '
        "'Authorization: Bearer <key>') or bind to 127.0.0.1."
    )
