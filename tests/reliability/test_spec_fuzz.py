"""S6: the network spec is a closed schema; fuzzed job bodies never produce a 5xx.

Fixed cases name the classic attacks (unknown keys, `module.attr` names, absurd nesting and
sizes); hypothesis then mutates a valid body at random places. Accepted jobs stay queued (no
workers run here), so the queue limit is raised to keep 429 out of the picture.
"""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.reliability_helpers import (
    InProcessClient,
    blobs_csv,
    make_app,
    small_job,
    strict_json,
)

ALLOWED = {202, 404, 413, 422}


@pytest.fixture(scope="module")
def jobs_client(tmp_path_factory):

    app = make_app(tmp_path_factory.mktemp("spec") / "data", max_queued_jobs_per_owner=1_000_000)
    with InProcessClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def dataset_id(jobs_client):
    response = jobs_client.post("/v1/datasets", files={"file": ("b.csv", blobs_csv(), "text/csv")})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def post_job(client, body) -> int:
    response = client.post("/v1/jobs", content=json.dumps(body),
                           headers={"Content-Type": "application/json"})  # fmt: skip
    if response.status_code != 202:
        assert response.headers["content-type"] == "application/problem+json", response.text[:300]
    strict_json(response.text)
    return response.status_code


def test_valid_body_is_accepted(jobs_client, dataset_id):
    assert post_job(jobs_client, small_job(dataset_id)) == 202


def _with(body, path, value):
    body = copy.deepcopy(body)
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


HOSTILE_EDITS = {
    "unknown top-level key": (["callback"], "os.system"),
    "unknown layer key": (["network", "layers", 0, "module"], "subprocess"),
    "layer type names a function": (["network", "layers", 0, "type"], "os.system"),
    "activation names a builtin": (["network", "layers", 0, "activation"], "builtins.eval"),
    "activation object names a module": (["network", "layers", 0, "activation"],
                                          {"name": "numpy.lib.format.read_array"}),
    "optimizer dunder": (["optimizer", "name"], "__import__"),
    "loss lambda": (["loss"], "lambda y, p: 0"),
    "init as path": (["network", "init"], "/etc/passwd"),
    "negative units": (["network", "layers", 0, "units"], -1),
    "epochs huge": (["epochs"], 10**18),
    "batch size zero": (["batch_size"], 0),
    "learning rate infinite": (["optimizer", "learning_rate"], 1e400),
    "seed as float": (["seed"], 0.5),
    "validation path": (["validation"], {"path": "../../etc/passwd"}),
    "dataset id traversal": (["dataset_id"], "../../etc/passwd"),
    "65 layers": (["network", "layers"], [{"type": "dense", "units": 2}] * 65),
    "100k layers": (["network", "layers"], [{"type": "dense", "units": 1}] * 100_000),
    "width 8193": (["network", "layers", 0, "units"], 8193),
    "deep nesting": (["network", "layers", 0, "activation"], json.loads("[" * 900 + "]" * 900)),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(HOSTILE_EDITS))
def test_hostile_specs_are_refused(jobs_client, dataset_id, case):
    path, value = HOSTILE_EDITS[case]
    status = post_job(jobs_client, _with(small_job(dataset_id), path, value))
    assert status in {404, 413, 422}, case


def test_parameter_budget_names_count_and_limit(jobs_client, dataset_id):
    wide = [{"type": "dense", "units": 4096, "activation": "tanh"}] * 2
    body = _with(small_job(dataset_id), ["network", "layers"],
                 [*wide, {"type": "dense", "units": 3, "activation": "softmax"}])  # fmt: skip
    response = jobs_client.post("/v1/jobs", json=body)
    assert response.status_code == 422
    assert "10,000,000" in response.text or "10000000" in response.text


JSON_LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20), st.sampled_from(["os.system", "builtins.eval", "__import__", "relu",
                                           "softmax", "dense", "maxout", "sgd", "adam", "../x"]),
)  # fmt: skip
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
PATHS = st.sampled_from([
    ["network"], ["network", "layers"], ["network", "layers", 0], ["network", "layers", 0, "units"],
    ["network", "layers", 0, "activation"], ["network", "layers", 1, "activation"],
    ["network", "layers", 0, "type"], ["network", "init"], ["optimizer"], ["optimizer", "name"],
    ["optimizer", "learning_rate"], ["epochs"], ["batch_size"], ["validation"], ["loss"], ["l2"],
    ["early_stopping"], ["standardize"], ["seed"], ["dtype"], ["unknown"], ["network", "extra"],
])  # fmt: skip


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edits=st.lists(st.tuples(PATHS, JSON_VALUES), min_size=1, max_size=3))
def test_fuzzed_job_bodies_never_fail_the_server(jobs_client, dataset_id, edits):
    body = small_job(dataset_id)
    for path, value in edits:
        try:
            body = _with(body, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed the parent; keep the body as it is
    assert post_job(jobs_client, body) in ALLOWED
