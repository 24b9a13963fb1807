"""/v1/models in-process, on models published the way the supervisor publishes them."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from engine.gradients import compute_gradients
from engine.model import Model as EngineModel
from engine.network import Network
from engine.preprocessing import Standardizer
from engine.spec import NetworkSpec, parameter_count
from service.models import EpochRecord, Job, Model, ModelWeights
from tests.service.api_helpers import (
    IRIS_LABELS,
    api_client,
    assert_problem,
    blobs,
    create_dataset,
    finished_job,
    job_body,
    make_settings,
    upload_json,
)

pytestmark = pytest.mark.anyio

CLASSIFIER = {
    "layers": [
        {"type": "dense", "units": 5, "activation": {"name": "tanh"}},
        {"type": "dense", "units": 3, "activation": {"name": "softmax"}},
    ]
}
REGRESSOR = {
    "layers": [
        {"type": "dense", "units": 4, "activation": {"name": "relu"}},
        {"type": "dense", "units": 1, "activation": {"name": "identity"}},
    ]
}


def build_engine_model(network: dict[str, Any], X: np.ndarray, task: str) -> EngineModel:
    spec = NetworkSpec.model_validate(network)
    loss = "cross_entropy" if task == "classification" else "mse"
    net = Network.from_spec(spec, X.shape[1], loss=loss, rng=np.random.default_rng(3))
    return EngineModel(net, Standardizer.fit(X, dtype=net.dtype), task)  # type: ignore[arg-type]


def publish(
    app: FastAPI,
    dataset: dict[str, Any],
    engine_model: EngineModel,
    network: dict[str, Any],
    **row: Any,
) -> str:
    """A succeeded job with its model, weights and two epochs of diagnostics, in one transaction."""
    spec = NetworkSpec.model_validate(network)
    row.setdefault("findings", [])
    with app.state.database.write() as session:
        job = Job(
            owner="public",
            dataset_id=dataset["id"],
            spec={"network": network},
            epochs=2,
            status="succeeded",
            epoch=2,
        )
        session.add(job)
        session.flush()
        for epoch in (1, 2):
            session.add(
                EpochRecord(
                    job_id=job.id,
                    epoch=epoch,
                    train_loss=1.0 / epoch,
                    learning_rate=0.1,
                    seconds=0.1,
                    layers=[
                        {"layer": 1, "grad_norm_w": 0.5 / epoch, "dead_fraction": float("nan")}
                    ],
                    findings=[],
                )
            )
        model = Model(
            owner="public",
            job_id=job.id,
            dataset_id=dataset["id"],
            network=network,
            loss="cross_entropy" if dataset["task"] == "classification" else "mse",
            task=dataset["task"],
            n_features=dataset["n_features"],
            parameter_count=parameter_count(spec, dataset["n_features"]),
            classes=dataset["classes"],
            best_epoch=2,
            metrics={"epoch": 2, "train_loss": 0.5},
            **row,
        )
        session.add(model)
        session.flush()
        session.add(ModelWeights(model_id=model.id, data=engine_model.to_bytes()))
        return model.id


@pytest.fixture
async def classifier(api: httpx.AsyncClient, app: FastAPI) -> dict[str, Any]:
    X, y = blobs(n_per_class=10)
    dataset = await create_dataset(api, n_per_class=10)
    engine_model = build_engine_model(CLASSIFIER, X, "classification")
    findings = [{"code": "dead_units", "severity": "warning", "layer": 1, "message": "try leaky"}]
    model_id = publish(app, dataset, engine_model, CLASSIFIER, findings=findings)
    return {"id": model_id, "engine": engine_model, "X": X, "y": y, "dataset": dataset}


async def test_get_and_list_models(api: httpx.AsyncClient, classifier: dict[str, Any]) -> None:
    model = (await api.get(f"/v1/models/{classifier['id']}")).json()
    assert model["parameter_count"] == (4 + 1) * 5 + (5 + 1) * 3
    assert model["classes"] == sorted(IRIS_LABELS) and model["task"] == "classification"
    assert model["layers"][0]["shapes"] == {"W": [5, 4], "b": [5]}
    assert model["layers"][0]["shape"] == [5, 4]  # API.md: "per layer: shape, activation"
    assert model["layers"][1]["activation"] == {"name": "softmax"}
    assert model["best_epoch"] == 2 and model["metrics"]["train_loss"] == 0.5
    listing = (await api.get("/v1/models")).json()
    assert listing["total"] == 1 and listing["items"][0]["id"] == classifier["id"]


async def test_predict_maps_classes_back_to_labels(
    api: httpx.AsyncClient, classifier: dict[str, Any]
) -> None:
    rows = classifier["X"][:7]
    response = await api.post(
        f"/v1/models/{classifier['id']}/predict", json={"inputs": rows.tolist()}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    expected = classifier["engine"].predict_proba(rows)
    np.testing.assert_allclose(body["probabilities"], expected, rtol=1e-6)
    labels = sorted(IRIS_LABELS)
    assert body["predictions"] == [labels[i] for i in np.argmax(expected, axis=1)]
    assert body["classes"] == labels


async def test_predict_rejects_wrong_width_naming_expected_and_given(
    api: httpx.AsyncClient, classifier: dict[str, Any]
) -> None:
    response = await api.post(
        f"/v1/models/{classifier['id']}/predict", json={"inputs": [[1.0, 2.0, 3.0]]}
    )
    problem = assert_problem(response, 422, "4 features", "has 3")
    assert problem["errors"][0]["loc"] == ["body", "inputs", 0]
    ragged = {"inputs": [[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0]]}
    response = await api.post(f"/v1/models/{classifier['id']}/predict", json=ragged)
    problem = assert_problem(response, 422, "row 1 has 3")
    assert problem["errors"][0]["loc"] == ["body", "inputs", 1]


@pytest.mark.parametrize(
    "body",
    [
        '{"inputs": [[NaN, 1, 2, 3]]}',
        '{"inputs": [[1e400, 1, 2, 3]]}',
        '{"inputs": []}',
        '{"inputs": [["a", 1, 2, 3]]}',
        '{"inputs": [[1, 2, 3, 4]], "extra": 1}',
        '{"inputs": [[1, [2], 3, 4]]}',
        '{"inputs": [["1e2", 1, 2, 3]]}',
        '{"inputs": [[true, 1, 2, 3]]}',
        "not json",
        "{}",
    ],
    ids=["nan", "overflow", "empty", "string", "extra-key", "nested-cell", "numeric-string",
         "bool", "not-json", "missing"],
)
async def test_predict_rejects_bad_bodies_with_422(
    api: httpx.AsyncClient, classifier: dict[str, Any], body: str
) -> None:
    response = await api.post(
        f"/v1/models/{classifier['id']}/predict",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    problem = assert_problem(response, 422)
    assert problem["errors"] and problem["errors"][0]["loc"][0] == "body"


async def test_predict_limits_rows(
    api: httpx.AsyncClient, app: FastAPI, classifier: dict[str, Any]
) -> None:
    rows = [[0.0] * 4] * (app.state.settings.max_predict_rows + 1)
    response = await api.post(f"/v1/models/{classifier['id']}/predict", json={"inputs": rows})
    assert_problem(response, 413, "10000")


async def test_unknown_model_is_404_everywhere(api: httpx.AsyncClient) -> None:
    for path in ("/v1/models/nope", "/v1/models/nope/weights", "/v1/models/nope/diagnostics"):
        assert_problem(await api.get(path), 404, "nope")
    for action in ("predict", "evaluate", "gradients"):
        assert_problem(await api.post(f"/v1/models/nope/{action}", json={}), 404)


async def test_evaluate_on_rows_gives_accuracy_and_confusion_matrix(
    api: httpx.AsyncClient, classifier: dict[str, Any]
) -> None:
    X, y = classifier["X"], classifier["y"]
    labels = sorted(IRIS_LABELS)
    body = {"inputs": X.tolist(), "targets": [labels[i] for i in y]}
    result = (await api.post(f"/v1/models/{classifier['id']}/evaluate", json=body)).json()
    predicted = classifier["engine"].predict(X)
    assert result["n_samples"] == 30
    assert result["accuracy"] == pytest.approx(float(np.mean(predicted == y)))
    confusion = np.array(result["confusion_matrix"])
    assert confusion.sum() == 30 and confusion.sum(axis=1).tolist() == [10, 10, 10]
    assert confusion.trace() == int(np.sum(predicted == y))
    proba = classifier["engine"].predict_proba(X)
    assert result["loss"] == pytest.approx(-np.mean(np.log(proba[np.arange(30), y])), rel=1e-4)


async def test_evaluate_on_a_stored_dataset_equals_evaluate_on_its_rows(
    api: httpx.AsyncClient, classifier: dict[str, Any]
) -> None:
    path = f"/v1/models/{classifier['id']}/evaluate"
    labels = sorted(IRIS_LABELS)
    by_dataset = (await api.post(path, json={"dataset_id": classifier["dataset"]["id"]})).json()
    rows = {"inputs": classifier["X"].tolist(), "targets": [labels[i] for i in classifier["y"]]}
    by_rows = (await api.post(path, json=rows)).json()
    assert by_dataset["confusion_matrix"] == by_rows["confusion_matrix"]
    assert by_dataset["loss"] == pytest.approx(by_rows["loss"], rel=1e-5)


async def test_evaluate_rejects_unknown_labels_and_mixed_sources(
    api: httpx.AsyncClient, classifier: dict[str, Any]
) -> None:
    path = f"/v1/models/{classifier['id']}/evaluate"
    rows = classifier["X"][:2].tolist()
    assert_problem(
        await api.post(path, json={"inputs": rows, "targets": ["setosa", "rose"]}), 422, "rose"
    )
    assert_problem(await api.post(path, json={"inputs": rows, "targets": ["setosa"]}), 422)
    assert_problem(await api.post(path, json={"inputs": rows, "targets": [True, False]}), 422)
    both = {"dataset_id": classifier["dataset"]["id"], "inputs": rows, "targets": ["setosa"] * 2}
    assert_problem(await api.post(path, json=both), 422)
    assert_problem(await api.post(path, json={"dataset_id": "missing"}), 404, "missing")


async def test_weights_npz_loads_without_pickle_and_matches_the_network(
    api: httpx.AsyncClient, classifier: dict[str, Any]
) -> None:
    response = await api.get(f"/v1/models/{classifier['id']}/weights")
    assert response.headers["content-type"] == "application/octet-stream"
    assert "attachment" in response.headers["content-disposition"]
    engine_model = classifier["engine"]
    with np.load(io.BytesIO(response.content), allow_pickle=False) as npz:
        assert set(npz.files) == {"W1", "b1", "W2", "b2", "mean", "scale"}
        assert npz["W1"].shape == (5, 4)
        np.testing.assert_array_equal(npz["W2"], engine_model.network.get_weights()["W2"])
        np.testing.assert_array_equal(npz["mean"], engine_model.standardizer.mean)


async def test_weights_as_json_are_nested_lists(
    api: httpx.AsyncClient, classifier: dict[str, Any]
) -> None:
    body = (
        await api.get(f"/v1/models/{classifier['id']}/weights", params={"format": "json"})
    ).json()
    assert body["shapes"]["W1"] == [5, 4] and len(body["arrays"]["W1"]) == 5
    np.testing.assert_allclose(
        body["arrays"]["b2"], classifier["engine"].network.get_weights()["b2"]
    )
    assert_problem(
        await api.get(f"/v1/models/{classifier['id']}/weights", params={"format": "pickle"}), 422
    )


async def test_diagnostics_list_epochs_and_findings_with_null_for_nan(
    api: httpx.AsyncClient, classifier: dict[str, Any]
) -> None:
    response = await api.get(f"/v1/models/{classifier['id']}/diagnostics")
    assert "NaN" not in response.text
    body = response.json()
    assert [e["epoch"] for e in body["epochs"]] == [1, 2]
    assert body["epochs"][1]["layers"][0] == {
        "layer": 1,
        "grad_norm_w": 0.25,
        "dead_fraction": None,
    }
    assert body["findings"][0]["code"] == "dead_units"


async def test_gradients_equal_the_engine_and_full_arrays_have_weight_shapes(
    api: httpx.AsyncClient, classifier: dict[str, Any]
) -> None:
    X, y = classifier["X"][:6], classifier["y"][:6]
    labels = sorted(IRIS_LABELS)
    body = {"inputs": X.tolist(), "targets": [labels[i] for i in y], "full": True}
    result = (await api.post(f"/v1/models/{classifier['id']}/gradients", json=body)).json()
    expected = compute_gradients(classifier["engine"], X, y, full=True)
    assert result["loss"] == pytest.approx(expected["loss"])
    for got, want in zip(result["layers"], expected["layers"], strict=True):
        for key in ("grad_norm_w", "weight_norm", "activation_mean", "activation_std"):
            assert got[key] == pytest.approx(want[key]), key
        for key in ("activation", "saturated_fraction", "dead_fraction", "duplicate_fraction"):
            assert got[key] == want[key], key
        np.testing.assert_allclose(got["dW"], want["dW"], rtol=1e-6, atol=1e-9)
    assert result["findings"] == expected["findings"]
    assert np.array(result["layers"][0]["dW"]).shape == (5, 4)
    assert np.array(result["layers"][0]["delta"]).shape == (6, 5)
    brief = (
        await api.post(f"/v1/models/{classifier['id']}/gradients", json=body | {"full": False})
    ).json()
    assert brief["layers"][0]["dW"] is None


async def test_gradients_report_what_the_rows_show(api: httpx.AsyncClient, app: FastAPI) -> None:
    X, y = blobs(n_per_class=10)
    dataset = await create_dataset(api, n_per_class=10)
    zeroed = build_engine_model(CLASSIFIER, X, "classification")
    for layer in zeroed.network.params:  # every hidden unit the same (exercise 4-8)
        for array in layer.values():
            array[...] = 0.0
    model_id = publish(app, dataset, zeroed, CLASSIFIER)
    labels = sorted(IRIS_LABELS)
    body = {"inputs": X[:8].tolist(), "targets": [labels[i] for i in y[:8]]}
    result = (await api.post(f"/v1/models/{model_id}/gradients", json=body)).json()
    assert result["layers"][0]["duplicate_fraction"] == pytest.approx(0.8)  # 1 of 5 distinct
    symmetric = [f for f in result["findings"] if f["code"] == "symmetric_units"]
    assert symmetric and symmetric[0]["layer"] == 1 and symmetric[0]["message"]


async def test_regression_model_predicts_values_and_evaluates_mse(
    api: httpx.AsyncClient, app: FastAPI
) -> None:
    X = np.linspace(0.0, 1.0, 12).reshape(6, 2)
    y = X.sum(axis=1)
    dataset = (await upload_json(api, {"X": X.tolist(), "y": y.tolist()})).json()
    engine_model = build_engine_model(REGRESSOR, X, "regression")
    model_id = publish(app, dataset, engine_model, REGRESSOR)
    predicted = (
        await api.post(f"/v1/models/{model_id}/predict", json={"inputs": X.tolist()})
    ).json()
    np.testing.assert_allclose(predicted["predictions"], engine_model.predict(X)[:, 0], rtol=1e-6)
    assert predicted["probabilities"] is None
    result = (
        await api.post(
            f"/v1/models/{model_id}/evaluate", json={"inputs": X.tolist(), "targets": y.tolist()}
        )
    ).json()
    residual = engine_model.predict(X)[:, 0] - y
    assert result["mse"] == pytest.approx(np.mean(residual**2), rel=1e-5)
    assert result["mae"] == pytest.approx(np.mean(np.abs(residual)), rel=1e-5)
    assert result["loss"] == pytest.approx(0.5 * np.mean(residual**2), rel=1e-4)
    assert_problem(
        await api.post(
            f"/v1/models/{model_id}/evaluate", json={"inputs": X.tolist(), "targets": ["a"] * 6}
        ),
        422,
    )


def npy_base64(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode()


async def test_predict_accepts_rows_as_base64_npy(
    api: httpx.AsyncClient, classifier: dict[str, Any]
) -> None:
    rows = classifier["X"][:9]
    path = f"/v1/models/{classifier['id']}/predict"
    as_lists = (await api.post(path, json={"inputs": rows.tolist()})).json()
    for dtype in (np.float64, np.float32, np.int64, np.uint8, np.bool_):  # the dataset dtypes
        cast = rows.astype(dtype)
        as_npy = (await api.post(path, json={"inputs_npy": npy_base64(cast)})).json()
        same_rows = (await api.post(path, json={"inputs": cast.astype(float).tolist()})).json()
        assert as_npy == same_rows, dtype
    assert (await api.post(path, json={"inputs_npy": npy_base64(rows)})).json() == as_lists


@pytest.mark.parametrize(
    ("payload", "status", "words"),
    [
        (np.zeros((2, 3)), 422, ("expects 4 features", "has 3")),
        (np.zeros((4,)), 422, ("2-D",)),
        (np.array([[np.nan, 0, 0, 0]]), 422, ("NaN",)),
        (np.zeros((2, 4), dtype="U3"), 422, ("dtype",)),
        (np.zeros((2, 4), dtype=np.float16), 422, ("dtype <f2", "float32 and float64")),
        (np.zeros((2, 4), dtype=np.complex64), 422, ("dtype <c8",)),
        (np.zeros((10_001, 4), dtype=np.float32), 413, ("10000",)),
        ("not base64!", 422, ("base64",)),
        (base64.b64encode(b"\x93NUMPY junk").decode(), 422, ("npy",)),
    ],
    ids=["width", "1-d", "nan", "strings", "float16", "complex", "too-many-rows", "bad-base64",
         "bad-header"],
)
async def test_predict_npy_input_is_checked_before_use(
    api: httpx.AsyncClient,
    classifier: dict[str, Any],
    payload: Any,
    status: int,
    words: tuple[str, ...],
) -> None:
    encoded = npy_base64(payload) if isinstance(payload, np.ndarray) else payload
    response = await api.post(
        f"/v1/models/{classifier['id']}/predict", json={"inputs_npy": encoded}
    )
    assert_problem(response, status, *words)


async def test_predict_npy_with_truncated_data_is_422(
    api: httpx.AsyncClient, classifier: dict[str, Any]
) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((3, 4)))
    truncated = base64.b64encode(buffer.getvalue()[:-8]).decode()
    response = await api.post(
        f"/v1/models/{classifier['id']}/predict", json={"inputs_npy": truncated}
    )
    assert_problem(response, 422, "bytes")


async def test_predict_needs_exactly_one_of_inputs_and_inputs_npy(
    api: httpx.AsyncClient, classifier: dict[str, Any]
) -> None:
    path = f"/v1/models/{classifier['id']}/predict"
    both = {"inputs": [[0.0] * 4], "inputs_npy": npy_base64(np.zeros((1, 4)))}
    assert_problem(await api.post(path, json=both), 422, "exactly one")
    assert_problem(await api.post(path, json={}), 422, "exactly one")


# --- evaluation metrics and exported weights, checked against arithmetic done here --------------


async def test_regression_evaluate_r2_mse_mae_follow_the_models_own_predictions(
    api: httpx.AsyncClient, app: FastAPI
) -> None:
    X = np.random.default_rng(4).uniform(-2.0, 2.0, size=(9, 2))
    y = np.sin(X[:, 0]) + X[:, 1] ** 2  # not what an untrained ReLU net predicts
    dataset = (await upload_json(api, {"X": X.tolist(), "y": y.tolist()})).json()
    assert dataset["task"] == "regression"
    model_id = publish(app, dataset, build_engine_model(REGRESSOR, X, "regression"), REGRESSOR)
    predicted = np.array(
        (await api.post(f"/v1/models/{model_id}/predict", json={"inputs": X.tolist()})).json()[
            "predictions"
        ]
    )
    residual = y - predicted
    r2 = 1.0 - np.sum(residual**2) / np.sum((y - y.mean()) ** 2)
    path = f"/v1/models/{model_id}/evaluate"
    for body in ({"inputs": X.tolist(), "targets": y.tolist()}, {"dataset_id": dataset["id"]}):
        response = await api.post(path, json=body)
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["n_samples"] == 9
        assert result["r2"] == pytest.approx(r2, rel=1e-5, abs=1e-6)
        assert result["mse"] == pytest.approx(np.mean(residual**2), rel=1e-5)
        assert result["mae"] == pytest.approx(np.mean(np.abs(residual)), rel=1e-5)
        assert result["loss"] == pytest.approx(0.5 * np.mean(residual**2), rel=1e-4)


@pytest.fixture
async def trained_api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an app with one real worker, for models trained through the API."""
    async with api_client(make_settings(tmp_path, workers=1)) as http:
        yield http


async def train_model(http: httpx.AsyncClient, body: dict[str, Any]) -> str:
    """Submit a job, wait for it to succeed, and return its model id."""
    submitted = await http.post("/v1/jobs", json=body)
    assert submitted.status_code == 202, submitted.text
    job = await finished_job(http, submitted.json()["id"])
    assert job["status"] == "succeeded", job
    return str(job["model_id"])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _standardized(arrays: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    if "mean" in arrays:
        return (X - arrays["mean"]) / arrays["scale"]
    return X


async def test_binary_logistic_classifier_trained_through_the_api(
    trained_api: httpx.AsyncClient,
) -> None:
    dataset = await create_dataset(trained_api, n_classes=2, n_per_class=15, seed=2)
    assert dataset["classes"] == ["setosa", "versicolor"]
    network = {"layers": [{"units": 3, "activation": "tanh"},
                          {"units": 1, "activation": "logistic"}]}
    body = job_body(dataset["id"], network=network, loss="cross_entropy", epochs=2,
                    optimizer={"name": "sgd", "learning_rate": 0.05})
    model_id = await train_model(trained_api, body)
    X, y = blobs(n_classes=2, n_per_class=15, seed=2)
    n = len(y)

    predicted = (
        await trained_api.post(f"/v1/models/{model_id}/predict", json={"inputs": X.tolist()})
    ).json()
    classes = predicted["classes"]
    assert classes == dataset["classes"]
    proba = np.array(predicted["probabilities"])
    assert proba.shape == (n, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    # p is the logistic unit's output, the probability of classes[1]: a forward pass from the
    # exported weights gives it, so the rows are [1 − p, p] and not the other way round.
    with np.load(io.BytesIO((await trained_api.get(f"/v1/models/{model_id}/weights")).content),
                 allow_pickle=False) as npz:
        w = {name: npz[name].astype(np.float64) for name in npz.files}
    a1 = np.tanh(_standardized(w, X) @ w["W1"].T + w["b1"])
    p = _sigmoid(a1 @ w["W2"].T + w["b2"])[:, 0]
    np.testing.assert_allclose(proba[:, 1], p, atol=1e-5)
    np.testing.assert_allclose(proba[:, 0], 1.0 - p, atol=1e-5)
    assert predicted["predictions"] == [classes[i] for i in np.argmax(proba, axis=1)]

    targets = [classes[i] for i in y]
    result = (
        await trained_api.post(
            f"/v1/models/{model_id}/evaluate", json={"inputs": X.tolist(), "targets": targets}
        )
    ).json()
    predicted_ids = np.array([classes.index(label) for label in predicted["predictions"]])
    assert result["n_samples"] == n
    assert result["accuracy"] == pytest.approx(float(np.mean(predicted_ids == y)))
    expected = np.zeros((2, 2), dtype=int)
    np.add.at(expected, (y, predicted_ids), 1)  # rows: true class, columns: predicted
    confusion = np.array(result["confusion_matrix"])
    assert confusion.shape == (2, 2) and confusion.sum() == n
    assert confusion.tolist() == expected.tolist()
    loss = -np.mean(np.log(proba[np.arange(n), y]))
    assert result["loss"] == pytest.approx(loss, rel=1e-4)


async def test_weights_of_prelu_swish_and_maxout_layers_reproduce_predict(
    trained_api: httpx.AsyncClient,
) -> None:
    dataset = await create_dataset(trained_api, n_per_class=8)
    network = {
        "layers": [
            {"units": 3, "activation": {"name": "prelu"}},
            {"units": 4, "activation": {"name": "swish", "beta": 1.5, "learnable": True}},
            {"type": "maxout", "units": 2, "pieces": 3},
            {"units": 3, "activation": "softmax"},
        ]
    }
    model_id = await train_model(trained_api, job_body(dataset["id"], network=network, epochs=2))
    path = f"/v1/models/{model_id}/weights"
    with np.load(io.BytesIO((await trained_api.get(path)).content), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    shapes = {
        "W1": (3, 4), "b1": (3,), "gamma1": (3,),
        "W2": (4, 3), "b2": (4,), "beta2": (4,),
        "W3": (2, 3, 4), "b3": (2, 3),
        "W4": (3, 2), "b4": (3,),
    }  # fmt: skip
    assert set(arrays) - {"mean", "scale"} == set(shapes)
    assert {name: arrays[name].shape for name in shapes} == shapes
    layers = (await trained_api.get(f"/v1/models/{model_id}")).json()["layers"]
    assert [tuple(layer["shape"]) for layer in layers] == [shapes[f"W{k}"] for k in range(1, 5)]
    as_json = (await trained_api.get(path, params={"format": "json"})).json()
    assert set(as_json["arrays"]) == set(arrays)
    for name, array in arrays.items():
        assert tuple(as_json["shapes"][name]) == array.shape, name
        np.testing.assert_allclose(as_json["arrays"][name], array, rtol=1e-6, err_msg=name)

    X, _ = blobs(n_per_class=8)
    w = {name: array.astype(np.float64) for name, array in arrays.items()}
    z1 = _standardized(w, X) @ w["W1"].T + w["b1"]
    a1 = np.where(z1 > 0, z1, w["gamma1"] * z1)
    z2 = a1 @ w["W2"].T + w["b2"]
    a2 = z2 * _sigmoid(w["beta2"] * z2)
    a3 = (np.einsum("ikj,nj->nik", w["W3"], a2) + w["b3"]).max(axis=2)
    z4 = a3 @ w["W4"].T + w["b4"]
    expected = np.exp(z4 - z4.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    predicted = (
        await trained_api.post(f"/v1/models/{model_id}/predict", json={"inputs": X.tolist()})
    ).json()
    np.testing.assert_allclose(predicted["probabilities"], expected, atol=1e-5)
