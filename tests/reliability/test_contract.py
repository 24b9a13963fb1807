"""A1 + A5 in-process: Schemathesis against the OpenAPI document with every check on, plus strict
JSON (no NaN/Infinity tokens in any response body).

The app runs in-process on schemathesis' ASGI transport, which sends `Host: testserver`, so that
name is allowed here. The live variant (`st run` against uvicorn, stateful phase included) is in
test_contract_live.py.
"""

from __future__ import annotations

import tempfile
import tomllib
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.reliability.reliability_helpers import KEYS, make_app
from tests.reliability.schemathesis_hooks import strict_json_body  # registers the A5 check

pytestmark = pytest.mark.slow


# Built at collection: schemathesis' lazy `from_fixture` fails under pytest 9 (no `_nodeid`).
# The directory is removed when the interpreter exits.
DATA_DIR = tempfile.TemporaryDirectory(prefix="contract-")
# The token goes through the declared HTTPBearer scheme, so Schemathesis knows it is the real one
# (a plain header counts as generated auth, and a 2xx with it as ignored auth) and negative cases
# may drop it knowingly.
BEARER = {"auth": {"openapi": {"HTTPBearer": {"bearer": KEYS["alice"]}}}}
CONFIG = schemathesis.Config.from_dict(
    tomllib.loads(Path(__file__).with_name("schemathesis.toml").read_text()) | BEARER
)
schema = schemathesis.openapi.from_asgi(
    "/openapi.json",
    make_app(Path(DATA_DIR.name) / "data", allowed_hosts="testserver"),
    config=CONFIG,
)


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


def test_unknown_query_parameters_are_negative_input_exactly_where_a_route_takes_a_query():
    """schemathesis.toml lets negative cases add unknown query parameters only there."""
    for result in schema.get_all_operations():
        operation = result.ok()
        generation = schema.config.generation_for(operation=operation, phase="fuzzing")
        assert generation.allow_extra_parameters == bool(list(operation.query)), operation.label


def test_routes_with_a_query_refuse_unknown_parameters_and_the_others_ignore_them(service_client):
    for path in ("/v1/datasets", "/v1/jobs", "/v1/models"):
        response = service_client.get(path, params={"bogus": "1"})
        assert response.status_code == 422 and "bogus" in response.json()["detail"], path
    assert service_client.get("/healthz", params={"bogus": "1"}).status_code == 200
