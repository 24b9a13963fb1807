"""A1 + A5 in-process: Schemathesis against the OpenAPI document with every check on, plus strict
JSON (no NaN/Infinity tokens in any response body).

The app runs in-process on schemathesis' ASGI transport, which sends `Host: testserver`, so that
name is allowed here. The live variant (`st run` against uvicorn, stateful phase included) is in
test_contract_live.py.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.reliability.reliability_helpers import ALICE, make_app
from tests.reliability.schemathesis_hooks import strict_json_body  # registers the A5 check

pytestmark = pytest.mark.slow


# Built at collection: schemathesis' lazy `from_fixture` fails under pytest 9 (no `_nodeid`).
# The directory is removed when the interpreter exits.
DATA_DIR = tempfile.TemporaryDirectory(prefix="contract-")
CONFIG = schemathesis.Config.from_path(Path(__file__).with_name("schemathesis.toml"))
schema = schemathesis.openapi.from_asgi(
    "/openapi.json",
    make_app(Path(DATA_DIR.name) / "data", allowed_hosts="testserver"),
    config=CONFIG,
)
schema.config.update(headers=ALICE)  # declared, so negative cases may drop it knowingly


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case):
    case.call_and_validate()


def test_the_strict_json_check_fires_on_non_finite_tokens():
    class NaNResponse:
        headers = {"content-type": ["application/json"]}
        content = b'{"loss": NaN}'

    with pytest.raises(AssertionError, match="NaN"):
        strict_json_body(None, NaNResponse(), None)
