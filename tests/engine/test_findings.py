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


def test_a_ratio_just_above_the_vanishing_threshold_is_not_reported() -> None:
    layers = [_layer(1, VANISHING_RATIO * 2), _layer(2, 1.0)]
    assert layer_findings(layers) == []


def test_exploding_gradient_from_growth_towards_the_input() -> None:
    layers = [_layer(1, 1e5), _layer(2, 10.0), _layer(3, 1.0)]
    (found,) = layer_findings(layers)
    assert (found["code"], found["layer"]) == ("exploding_gradient", 1)


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
