"""Gradients on demand: the exact gradient of the mean loss over the given raw rows at the model's
weights, per layer, with optional arrays and optional L2 term."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import DataError
from engine.gradcheck import numerical_gradient, relative_error
from engine.gradients import compute_gradients
from engine.model import Model
from engine.network import Network
from engine.preprocessing import Standardizer
from engine.spec import NetworkSpec


def make_model(
    *, output: str = "softmax", l2: float | None = None, dtype: str = "float64"
) -> Model:
    units = {"softmax": 3, "logistic": 1}.get(output, 2)
    spec = NetworkSpec.model_validate({"layers": [
        {"units": 5, "activation": "prelu"}, {"units": 4, "activation": "tanh"},
        {"units": units, "activation": output},
    ]})
    loss = "mse" if output == "identity" else "cross_entropy"
    network = Network.from_spec(spec, 3, loss=loss, dtype=dtype, rng=np.random.default_rng(1))
    standardizer = Standardizer.fit(raw_rows(50), dtype=dtype)
    metadata = {} if l2 is None else {"l2": l2}
    task = "regression" if output == "identity" else "classification"
    return Model(network, standardizer, task, metadata)


def raw_rows(n: int = 6) -> np.ndarray:
    return np.random.default_rng(2).normal(loc=10.0, scale=4.0, size=(n, 3))


LABELS = np.array([0, 2, 1, 1, 0, 2])


def test_the_gradient_is_that_of_the_mean_loss_over_the_raw_rows() -> None:
    model = make_model()
    result = compute_gradients(model, raw_rows(), LABELS, full=True)
    X = model.prepare_inputs(raw_rows())
    network = model.network
    assert result["loss"] == pytest.approx(network.evaluate_loss(X, LABELS), rel=1e-14)
    for layer, params in zip(result["layers"], network.params, strict=True):
        for name, key in (("W", "dW"), ("b", "db")):
            numeric = numerical_gradient(lambda: network.evaluate_loss(X, LABELS), params[name])
            assert relative_error(layer[key], numeric) <= 1e-7
    numeric_gamma = numerical_gradient(
        lambda: network.evaluate_loss(X, LABELS), network.params[0]["gamma"]
    )
    assert relative_error(result["layers"][0]["dgamma"], numeric_gamma) <= 1e-7


def test_statistics_summarise_the_arrays() -> None:
    result = compute_gradients(make_model(), raw_rows(), LABELS, full=True)
    assert [layer["layer"] for layer in result["layers"]] == [1, 2, 3]
    for layer in result["layers"]:
        assert layer["grad_norm_w"] == pytest.approx(np.linalg.norm(layer["dW"]))
        assert layer["grad_norm_b"] == pytest.approx(np.linalg.norm(layer["db"]))
        assert layer["mean_abs_delta"] == pytest.approx(np.mean(np.abs(layer["delta"])))
        assert layer["delta"].shape[0] == 6
        assert all(isinstance(layer[key], float)
                   for key in ("grad_norm_w", "grad_norm_b", "mean_abs_delta"))


STATISTICS = {"layer", "activation", "grad_norm_w", "grad_norm_b", "mean_abs_delta", "weight_norm",
              "activation_mean", "activation_std", "saturated_fraction", "dead_fraction",
              "duplicate_fraction"}


def test_without_full_there_are_no_arrays() -> None:
    result = compute_gradients(make_model(), raw_rows(), LABELS)
    assert set(result["layers"][0]) == STATISTICS


def test_the_statistics_describe_this_batch_like_the_training_diagnostics() -> None:
    model = make_model()
    result = compute_gradients(model, raw_rows(), LABELS)
    network = model.network  # its caches now hold this batch
    for row, params, a in zip(result["layers"], network.params, network.a, strict=True):
        assert row["weight_norm"] == pytest.approx(np.linalg.norm(params["W"]), rel=1e-12)
        assert row["activation_mean"] == pytest.approx(a.mean(), rel=1e-12)
        assert row["activation_std"] == pytest.approx(a.std(), rel=1e-12)
        assert "update_ratio" not in row  # nothing was updated
    assert [row["activation"] for row in result["layers"]] == ["prelu", "tanh", "softmax"]
    tanh_slope = 1 - network.a[1] ** 2
    assert result["layers"][1]["saturated_fraction"] == pytest.approx(np.mean(tanh_slope < 0.05))
    assert 0.0 <= result["layers"][1]["saturated_fraction"] <= 1.0
    never_active = np.all(network.z[0] <= 0, axis=0)  # PReLU is of the ReLU family
    assert result["layers"][0]["dead_fraction"] == pytest.approx(np.mean(never_active))
    assert result["layers"][1]["dead_fraction"] is None  # tanh units cannot die


def test_findings_come_with_the_gradients() -> None:
    symmetric = make_model()
    for layer in symmetric.network.params:  # zero initialisation (exercise 4-8)
        for array in layer.values():
            array[...] = 0.0
    codes = [f["code"] for f in compute_gradients(symmetric, raw_rows(), LABELS)["findings"]]
    assert "symmetric_units" in codes
    assert compute_gradients(make_model(), raw_rows(), LABELS)["findings"] == []


def test_delta_rows_carry_the_one_over_n_factor() -> None:
    # The same rows twice: the mean loss and ∂L/∂W are unchanged, each δ row is halved.
    model = make_model()
    once = compute_gradients(model, raw_rows(), LABELS, full=True)
    twice = compute_gradients(model, np.vstack([raw_rows()] * 2), np.tile(LABELS, 2), full=True)
    assert twice["loss"] == pytest.approx(once["loss"], rel=1e-12)
    for a, b in zip(once["layers"], twice["layers"], strict=True):
        np.testing.assert_allclose(b["dW"], a["dW"], rtol=1e-10)
        np.testing.assert_allclose(b["delta"][:6], a["delta"] / 2, rtol=1e-12)


def test_include_l2_adds_lambda_w_to_weights_only_and_the_penalty_to_the_loss() -> None:
    model = make_model(l2=0.2)
    plain = compute_gradients(model, raw_rows(), LABELS, full=True)
    with_l2 = compute_gradients(model, raw_rows(), LABELS, full=True, include_l2=True)
    weights = [params["W"] for params in model.network.params]
    penalty = 0.5 * 0.2 * sum(np.sum(W**2) for W in weights)
    assert with_l2["loss"] == pytest.approx(plain["loss"] + penalty, rel=1e-12)
    for a, b, W in zip(plain["layers"], with_l2["layers"], weights, strict=True):
        np.testing.assert_allclose(b["dW"], a["dW"] + 0.2 * W, rtol=1e-12)
        np.testing.assert_array_equal(b["db"], a["db"])
    explicit = compute_gradients(model, raw_rows(), LABELS, include_l2=True, l2=0.0)
    assert explicit["loss"] == pytest.approx(plain["loss"], rel=1e-14)


def test_regression_targets_may_be_one_dimensional_only_for_one_output() -> None:
    model = make_model(output="identity")
    values = np.arange(12.0).reshape(6, 2)
    assert compute_gradients(model, raw_rows(), values)["loss"] > 0
    with pytest.raises(DataError, match="shape"):
        compute_gradients(model, raw_rows(), values[:, 0])


@pytest.mark.parametrize(
    "labels", [np.array([0, 3, 1, 1, 0, 2]), np.array([0, -1, 1, 1, 0, 2]), LABELS[:5],
               np.array([0.5, 2, 1, 1, 0, 2]), np.array(["a"] * 6)],
    ids=["too_large", "negative", "too_few", "fractional", "strings"],
)
def test_unusable_class_labels_are_data_errors(labels: np.ndarray) -> None:
    with pytest.raises(DataError):
        compute_gradients(make_model(), raw_rows(), labels)


def test_the_model_weights_are_not_changed() -> None:
    model = make_model()
    before = model.network.get_weights()
    compute_gradients(model, raw_rows(), LABELS, include_l2=True, l2=0.5)
    after = model.network.get_weights()
    assert all(np.array_equal(before[name], after[name]) for name in before)


def test_float32_models_give_float32_arrays() -> None:
    result = compute_gradients(make_model(dtype="float32"), raw_rows(), LABELS, full=True)
    assert {layer["dW"].dtype for layer in result["layers"]} == {np.dtype(np.float32)}
