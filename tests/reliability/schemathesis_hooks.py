"""Schemathesis hooks shared by the in-process test and `st run` (SCHEMATHESIS_HOOKS=this module).

A5: every JSON response body parses with a parser that refuses NaN and Infinity tokens.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis


def _refuse(token: str) -> Any:
    raise AssertionError(f"non-finite token {token} in a JSON response (not strict JSON)")


@schemathesis.check
def strict_json_body(ctx: Any, response: Any, case: Any) -> None:
    content_type = response.headers.get("content-type", [""])[0]
    if "json" in content_type and response.content:
        json.loads(response.content, parse_constant=_refuse)
