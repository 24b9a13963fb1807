"""The OpenAPI document: security, links for the stateful contract tests, both upload bodies."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema_rs
import pytest

pytestmark = pytest.mark.anyio


@pytest.fixture
async def document(api: httpx.AsyncClient) -> dict[str, Any]:
    response = await api.get("/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op) for path, ops in document["paths"].items() for method, op in ops.items()
    ]


async def test_every_operation_but_the_probes_requires_the_bearer_scheme(
    document: dict[str, Any],
) -> None:
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, method, operation in operations(document):
        expected = [] if path in ("/healthz", "/readyz") else [{"HTTPBearer": []}]
        assert operation.get("security", []) == expected, (method, path)


async def test_every_error_response_is_a_problem_document(document: dict[str, Any]) -> None:
    checked = set()
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                assert "application/problem+json" in response["content"], (method, path, status)
                checked.add(status)
    assert {"401", "404", "409", "413", "415", "422", "429"} <= checked


async def test_links_lead_from_creation_to_reading_and_cancelling(document: dict[str, Any]) -> None:
    job_links = document["paths"]["/v1/jobs"]["post"]["responses"]["202"]["links"]
    assert job_links["GetJob"] == {
        "operationId": "get_job",
        "parameters": {"job_id": "$response.body#/id"},
    }
    assert job_links["CancelJob"]["operationId"] == "cancel_job"
    dataset_links = document["paths"]["/v1/datasets"]["post"]["responses"]["201"]["links"]
    assert dataset_links["GetDataset"]["operationId"] == "get_dataset"
    operation_ids = {op["operationId"] for _, _, op in operations(document)}
    assert {"get_job", "cancel_job", "get_dataset", "delete_dataset"} <= operation_ids


async def test_dataset_upload_documents_multipart_and_json(document: dict[str, Any]) -> None:
    content = document["paths"]["/v1/datasets"]["post"]["requestBody"]["content"]
    assert content["multipart/form-data"]["schema"]["properties"]["file"]["format"] == "binary"
    assert content["application/json"]["schema"]["$ref"].endswith("/DatasetJsonBody")


async def test_hand_parsed_bodies_refer_to_existing_components(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    for action in ("predict", "evaluate", "gradients"):
        body = document["paths"][f"/v1/models/{{model_id}}/{action}"]["post"]["requestBody"]
        reference = body["content"]["application/json"]["schema"]["$ref"]
        assert reference.rsplit("/", 1)[1] in components
    assert "inputs" in components["PredictRequest"]["properties"]


CONTRACT_JOB_BODY = {  # API.md's example, verbatim: names and aliases as clients write them
    "dataset_id": "…",
    "validation": {"split": 0.2},
    "network": {
        "layers": [
            {"type": "dense", "units": 64, "activation": "tanh"},
            {"type": "dense", "units": 10, "activation": "softmax"},
        ],
        "init": "xavier",
    },
    "loss": "cross_entropy",
    "optimizer": {"name": "sgd", "learning_rate": 0.1, "momentum": 0.0},
    "batch_size": 32,
    "epochs": 50,
    "l2": 0.0001,
    "early_stopping": {"patience": 5},
    "standardize": True,
    "seed": 0,
    "dtype": "float32",
}


def _request_validator(document: dict[str, Any], path: str) -> Any:
    body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    return jsonschema_rs.validator_for({**body["schema"], "components": document["components"]})


async def test_the_contracts_job_body_and_activation_aliases_fit_the_published_schema(
    document: dict[str, Any],
) -> None:
    validator = _request_validator(document, "/v1/jobs")
    assert validator.is_valid(CONTRACT_JOB_BODY)
    for activation in ("sigmoid", "silu", {"name": "swish", "beta": 1.5, "learnable": True},
                       {"name": "leaky_relu", "gamma": 0.1}):
        layers = [{"type": "dense", "units": 4, "activation": activation},
                  {"type": "dense", "units": 2, "activation": "softmax"}]
        body = {**CONTRACT_JOB_BODY, "network": {"layers": layers, "init": "he"}}
        assert validator.is_valid(body), activation
    # the schema still says no to what the server refuses
    wrong = {**CONTRACT_JOB_BODY, "network": {"layers": CONTRACT_JOB_BODY["network"]["layers"],
                                              "init": "orthogonal"}}
    assert not validator.is_valid(wrong)
    unknown = [{"type": "dense", "units": 4, "activation": "mish"}]
    assert not validator.is_valid({**CONTRACT_JOB_BODY, "network": {"layers": unknown}})
