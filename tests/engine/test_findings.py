"""Findings rules over plain per-layer statistics: each code fires on its pattern only."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.findings import (
    DEAD_FRACTION,
    FINDING_CODES,
    SATURATED_FRACTION,
    VANISHING_RATIO,
    findings,
    input_statistics,
    layer_findings,
)
from engine.spec import TrainingSpec
from engine.training import train


def _layer(layer: int, grad_norm_w: float, **extra: Any) -> dict[str, Any]:
    row = {
        "layer": layer, "activation": "tanh", "grad_norm_w": grad_norm_w, "grad_norm_b": 0.1,
        "mean_abs_delta": 0.01, "weight_norm": 1.0, "update_ratio": 1e-3,
        "activation_mean": 0.0, "activation_std": 0.5, "saturated_fraction": 0.0,
        "dead_fraction": None, "duplicate_fraction": 0.0,
    }
    row.update(extra)
    return row


def _healthy(n_layers: int = 3) -> list[dict[str, Any]]:
    return [_layer(i, 0.5) for i in range(1, n_layers + 1)]


def _codes(found: list[dict[str, Any]]) -> list[str]:
    return [f["code"] for f in found]


def test_a_healthy_network_has_no_findings() -> None:
    assert layer_findings(_healthy()) == []


def test_vanishing_gradient_names_the_layer_and_the_ratio() -> None:
    layers = [_layer(1, 1e-6), _layer(2, 0.3), _layer(3, 1.0)]
    (found,) = layer_findings(layers)
    assert found["code"] == "vanishing_gradient"
    assert found["layer"] == 1
    assert found["message"].startswith("gradients vanish below layer 2: ")
    assert "1e-06 of the last layer's" in found["message"]
    assert "try ReLU or He initialisation" in found["message"]


def test_the_vanishing_threshold_is_strict() -> None:
    at_threshold = [_layer(1, VANISHING_RATIO), _layer(2, 1.0)]
    assert layer_findings(at_threshold) == []
    just_below = [_layer(1, VANISHING_RATIO * (1 - 1e-9)), _layer(2, 1.0)]
    assert [found["code"] for found in layer_findings(just_below)] == ["vanishing_gradient"]


def test_exploding_gradient_from_growth_towards_the_input() -> None:
    layers = [_layer(1, 1e5), _layer(2, 10.0), _layer(3, 1.0)]
    (found,) = layer_findings(layers)
    assert (found["code"], found["layer"]) == ("exploding_gradient", 1)


def test_a_gradient_norm_that_overflowed_is_exploding_not_a_crash() -> None:
    layers = [_layer(1, 1.0), _layer(2, 1.0), _layer(3, 1.0)]
    layers[0]["grad_norm_w"] = None  # diagnostics report an overflowed (inf) norm as None
    (found,) = layer_findings(layers)
    assert (found["code"], found["layer"]) == ("exploding_gradient", 1)
    assert "too large for the weights' dtype" in found["message"]


def test_training_reports_a_float32_gradient_norm_overflow_as_a_finding() -> None:
    rng = np.random.default_rng(0)  # finite gradients whose float32 sum of squares overflows
    X = (rng.uniform(0.5, 1.0, size=(64, 1000)) * 5e18).astype(np.float32)
    y = rng.integers(0, 2, size=64)
    result = _train([{"units": 8, "activation": "relu"}, SOFTMAX_2], X, y, batch_size=64,
                    epochs=1, standardize=False,
                    optimizer={"name": "sgd", "learning_rate": 1e-30})
    assert result.history[0]["epoch"] == 1  # the epoch finished: no TypeError in the findings
    assert "exploding_gradient" in [finding["code"] for finding in result.findings]


def test_exploding_gradient_from_a_step_larger_than_the_weights() -> None:
    layers = [_layer(1, 0.5), _layer(2, 0.5, update_ratio=3.0)]
    (found,) = layer_findings(layers)
    assert (found["code"], found["layer"]) == ("exploding_gradient", 2)
    assert "lower the learning rate" in found["message"]


def test_dead_units_in_a_hidden_relu_layer() -> None:
    layers = _healthy()
    layers[1].update(activation="relu", dead_fraction=DEAD_FRACTION, saturated_fraction=None)
    (found,) = layer_findings(layers)
    assert (found["code"], found["layer"]) == ("dead_units", 2)
    assert "50% of layer 2's relu units" in found["message"]


def test_saturated_units_in_a_hidden_layer() -> None:
    layers = _healthy()
    layers[0]["saturated_fraction"] = SATURATED_FRACTION + 0.2
    (found,) = layer_findings(layers)
    assert (found["code"], found["layer"]) == ("saturated_units", 1)


def test_the_output_layer_is_never_called_saturated_or_symmetric() -> None:
    layers = _healthy()
    layers[-1].update(saturated_fraction=0.9, duplicate_fraction=0.5, dead_fraction=0.9)
    assert layer_findings(layers) == []


def test_symmetric_units_is_an_error() -> None:
    layers = _healthy()
    layers[0]["duplicate_fraction"] = 0.75
    (found,) = layer_findings(layers)
    assert (found["code"], found["severity"], found["layer"]) == ("symmetric_units", "error", 1)
    assert "zero initialisation" in found["message"]


def test_all_positive_inputs_are_uncentered() -> None:
    X = np.random.default_rng(0).uniform(1.0, 5.0, size=(200, 4))
    stats = input_statistics(X.min(0), X.max(0), X.mean(0), X.std(0))
    (found,) = findings([_healthy()], stats)
    assert found["code"] == "uncentered_inputs"
    assert found["layer"] is None
    assert "100% of the features never change sign" in found["message"]
    assert "standardize" in found["message"]


def test_zero_mean_inputs_are_centered() -> None:
    X = np.random.default_rng(0).standard_normal((200, 4))
    stats = input_statistics(X.min(0), X.max(0), X.mean(0), X.std(0))
    assert findings([_healthy()], stats) == []


def test_constant_features_do_not_count_as_uncentered() -> None:
    X = np.random.default_rng(0).standard_normal((200, 4))
    X[:, 0] = 7.0
    stats = input_statistics(X.min(0), X.max(0), X.mean(0), X.std(0))
    assert stats["n_varying_features"] == 3
    assert findings([_healthy()], stats) == []


def test_run_findings_use_the_latest_diagnosed_epoch() -> None:
    early = [_layer(1, 1e-6), _layer(2, 1.0)]
    later = [_layer(1, 0.5), _layer(2, 1.0)]
    assert _codes(findings([early, later, []])) == []
    assert _codes(findings([later, early, []])) == ["vanishing_gradient"]


def test_divergence_becomes_an_error_finding() -> None:
    found = findings([], None, divergence="loss became NaN at epoch 7; lower the learning rate")
    assert found == [{"code": "diverged", "severity": "error", "layer": None,
                      "message": "loss became NaN at epoch 7; lower the learning rate"}]


def test_every_code_is_listed() -> None:
    assert set(FINDING_CODES) == {
        "vanishing_gradient", "exploding_gradient", "dead_units", "saturated_units",
        "symmetric_units", "uncentered_inputs", "diverged",
    }


# --- the findings that real training runs produce ---------------------------------------------


def _train(
    layers: list[dict[str, Any]], X: np.ndarray, y: np.ndarray, init: str = "auto", **spec: Any
) -> Any:
    body = {"network": {"layers": layers, "init": init},
            "optimizer": {"name": "sgd", "learning_rate": 0.1},
            "batch_size": 32, "epochs": 2, "seed": 0, **spec}
    return train(TrainingSpec.model_validate(body), X, y, task="classification",
                 checkpoint_every=0)


def _data(n: int = 256, features: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, features))
    return X, (X[:, 0] + X[:, 1] > 0).astype(np.int64)


SOFTMAX_2 = {"units": 2, "activation": "softmax"}


def test_zero_initialisation_yields_symmetric_units() -> None:
    X, y = _data()
    result = _train([{"units": 6, "activation": "tanh"}, SOFTMAX_2], X, y, init="zeros")
    assert "symmetric_units" in _codes(result.findings)
    healthy = _train([{"units": 6, "activation": "tanh"}, SOFTMAX_2], X, y)
    assert "symmetric_units" not in _codes(healthy.findings)


def test_ten_logistic_layers_vanish_where_ten_relu_he_layers_do_not() -> None:
    X, y = _data()
    logistic = [{"units": 32, "activation": "logistic"}] * 9 + [SOFTMAX_2]
    relu = [{"units": 32, "activation": "relu"}] * 9 + [SOFTMAX_2]
    vanishing = _train(logistic, X, y, init="xavier_uniform")
    assert "vanishing_gradient" in _codes(vanishing.findings)
    assert "gradients vanish below layer" in vanishing.findings[0]["message"]
    assert "vanishing_gradient" not in _codes(_train(relu, X, y, init="he_normal").findings)


def test_all_positive_inputs_without_standardisation_are_uncentered() -> None:
    X, y = _data()
    layers = [{"units": 6, "activation": "tanh"}, SOFTMAX_2]
    shifted = np.abs(X) + 1.0
    assert "uncentered_inputs" in _codes(_train(layers, shifted, y, standardize=False).findings)
    assert "uncentered_inputs" not in _codes(_train(layers, shifted, y).findings)


def test_a_huge_learning_rate_yields_diverged() -> None:
    X, y = _data()
    layers = [{"units": 16, "activation": "relu"}, SOFTMAX_2]
    result = _train(layers, X * 1e4, y, standardize=False, epochs=5,
                    optimizer={"name": "sgd", "learning_rate": 1000.0})
    assert result.stop_reason == "diverged"
    assert _codes(result.findings)[-1] == "diverged"
    assert "or standardize the inputs" in result.findings[-1]["message"]
