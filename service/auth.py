"""Bearer API keys → owner. Every object a client sees belongs to the owner that created it.

With FEEDFORWARD_API_KEYS unset, authentication is off and every request acts as owner "public"
(`feedforward serve` refuses a non-loopback bind in that case). With keys set, a request without a
key or with a wrong one gets a 401 problem with `WWW-Authenticate: Bearer`. Keys are compared in
constant time against every configured key, so timing reveals neither a key nor which one matched.

The header is read here rather than through FastAPI's HTTPBearer dependency: every dependency costs
per request, and this one sits on the prediction hot path. The OpenAPI document still declares the
scheme (service.openapi adds BEARER_SCHEME to every operation outside PUBLIC_PATHS), which gives
/docs its Authorize button.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from service.problems import Unauthorized

__all__ = ["BEARER_SCHEME", "PUBLIC_OWNER", "PUBLIC_PATHS", "OwnerDep", "resolve_owner"]

PUBLIC_OWNER = "public"
PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})  # probes; everything else needs a key
BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": 'An API key from FEEDFORWARD_API_KEYS ("owner:key" pairs).',
}


def resolve_owner(key_owners: dict[str, str], presented: str | None) -> str | None:
    """The owner of `presented`, None when it matches no key (constant time over all keys)."""
    if presented is None:
        return None
    presented_bytes = presented.encode()
    owner: str | None = None
    for key, key_owner in key_owners.items():
        if hmac.compare_digest(key.encode(), presented_bytes):
            owner = key_owner
    return owner


async def current_owner(request: Request) -> str:
    key_owners: dict[str, str] = request.app.state.settings.api_key_owners
    if not key_owners:
        return PUBLIC_OWNER
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials:
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    owner = resolve_owner(key_owners, credentials)
    if owner is None:
        raise Unauthorized("the API key is not valid")
    return owner


OwnerDep = Annotated[str, Depends(current_owner)]
