"""The whole flow in-process with one real worker: upload → train → poll → predict → read."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
import pytest

from service.settings import Settings
from tests.service.api_helpers import (
    IRIS_LABELS,
    blobs,
    create_dataset,
    finished_job,
    job_body,
    make_settings,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
DEADLINE_SECONDS = 120


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, workers=1)


async def test_train_then_predict_evaluate_and_diagnose(api: httpx.AsyncClient) -> None:
    dataset = await create_dataset(api, n_per_class=30)
    body = job_body(
        dataset["id"],
        l2=0.01,
        epochs=15,
        validation={"split": 0.2},
        early_stopping={"patience": 5},
        batch_size=8,
    )
    submitted = await api.post("/v1/jobs", json=body)
    assert submitted.status_code == 202, submitted.text
    job = await finished_job(api, submitted.json()["id"], timeout=DEADLINE_SECONDS)
    assert job["status"] == "succeeded", job
    assert job["model_id"] and job["epoch"] >= 1 and job["metrics"]["val_loss"] is not None

    metrics = (await api.get(f"/v1/jobs/{job['id']}/metrics")).json()
    assert [row["epoch"] for row in metrics["items"]] == list(range(1, job["epoch"] + 1))

    X, y = blobs(n_per_class=30)
    model_path = f"/v1/models/{job['model_id']}"
    prediction = (await api.post(f"{model_path}/predict", json={"inputs": X.tolist()})).json()
    labels = sorted(IRIS_LABELS)
    accuracy = np.mean(
        [p == IRIS_LABELS[t] for p, t in zip(prediction["predictions"], y, strict=True)]
    )
    assert accuracy > 0.9  # well-separated blobs
    assert prediction["classes"] == labels

    evaluation = (
        await api.post(f"{model_path}/evaluate", json={"dataset_id": dataset["id"]})
    ).json()
    assert evaluation["accuracy"] == pytest.approx(accuracy)

    diagnostics = (await api.get(f"{model_path}/diagnostics")).json()
    assert len(diagnostics["epochs"]) == job["epoch"]
    assert {layer["layer"] for layer in diagnostics["epochs"][0]["layers"]} == {1, 2}

    weights = await api.get(f"{model_path}/weights")
    with np.load(io.BytesIO(weights.content), allow_pickle=False) as npz:
        assert npz["W1"].shape == (8, 4) and npz["W2"].shape == (3, 8)

    rows = {"inputs": X[:10].tolist(), "targets": [IRIS_LABELS[t] for t in y[:10]]}
    plain = (await api.post(f"{model_path}/gradients", json=rows)).json()
    with_l2 = (await api.post(f"{model_path}/gradients", json=rows | {"include_l2": True})).json()
    assert with_l2["loss"] > plain["loss"]  # ½λ‖W‖² is added, with the job's λ = 0.01
    assert with_l2["layers"][0]["grad_norm_w"] != plain["layers"][0]["grad_norm_w"]
    assert with_l2["layers"][0]["grad_norm_b"] == pytest.approx(plain["layers"][0]["grad_norm_b"])
