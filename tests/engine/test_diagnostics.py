"""Per-layer diagnostics from one batch: norms, update ratio, saturated, dead and copied units."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from engine.checkpoint import Checkpoint
from engine.diagnostics import WeightSnapshot, layer_diagnostics
from engine.network import Network
from engine.optimizers import SGD
from engine.preprocessing import Standardizer
from engine.spec import NetworkSpec, TrainingSpec
from engine.training import train

CONTRACT_KEYS = {
    "layer", "grad_norm_w", "grad_norm_b", "mean_abs_delta", "weight_norm", "update_ratio",
    "activation_mean", "activation_std", "saturated_fraction", "dead_fraction",
}


def _network(hidden: str, *, init: str = "auto", units: int = 16, seed: int = 0) -> Network:
    spec = NetworkSpec.model_validate({
        "layers": [{"units": units, "activation": hidden}, {"units": 3, "activation": "softmax"}],
        "init": init,
    })
    return Network.from_spec(spec, 5, loss="cross_entropy", dtype="float64",
                             rng=np.random.default_rng(seed))


def _batch(seed: int = 1, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return scale * rng.standard_normal((64, 5)), rng.integers(0, 3, size=64)


def _diagnose_one_step(network: Network, lr: float = 0.1, **batch: Any) -> list[dict[str, Any]]:
    X, y = _batch(**batch)
    snapshot = WeightSnapshot(network.params).take(network.params)
    network.loss_and_gradients(X, y)
    SGD(network.params).step(network.params, network.grads, lr)
    return layer_diagnostics(network, snapshot)


def test_rows_have_the_contract_keys_as_plain_floats() -> None:
    rows = _diagnose_one_step(_network("tanh"))
    assert [row["layer"] for row in rows] == [1, 2]
    for row in rows:
        assert CONTRACT_KEYS <= set(row)
        for key in CONTRACT_KEYS - {"layer"}:
            assert row[key] is None or type(row[key]) is float, key


def test_norms_match_the_gradients_and_weights() -> None:
    network = _network("tanh")
    rows = _diagnose_one_step(network)
    for row, grads, params, delta in zip(rows, network.grads, network.params, network.delta,
                                         strict=True):
        assert row["grad_norm_w"] == pytest.approx(np.linalg.norm(grads["W"]), rel=1e-12)
        assert row["grad_norm_b"] == pytest.approx(np.linalg.norm(grads["b"]), rel=1e-12)
        assert row["weight_norm"] == pytest.approx(np.linalg.norm(params["W"]), rel=1e-12)
        assert row["mean_abs_delta"] == pytest.approx(np.abs(delta).mean(), rel=1e-12)


def test_update_ratio_of_an_sgd_step_is_lr_times_gradient_over_weights() -> None:
    network = _network("tanh")
    before = [p["W"].copy() for p in network.params]
    rows = _diagnose_one_step(network, lr=0.1)
    for row, grads, W0 in zip(rows, network.grads, before, strict=True):
        expected = 0.1 * np.linalg.norm(grads["W"]) / np.linalg.norm(W0)
        assert row["update_ratio"] == pytest.approx(expected, rel=1e-9)


def test_update_ratio_is_none_without_a_snapshot() -> None:
    network = _network("tanh")
    network.loss_and_gradients(*_batch())
    assert all(row["update_ratio"] is None for row in layer_diagnostics(network))


def test_tanh_units_saturate_on_huge_inputs_and_not_on_small_ones() -> None:
    saturated = _diagnose_one_step(_network("tanh"), scale=100.0)[0]["saturated_fraction"]
    calm = _diagnose_one_step(_network("tanh"), scale=0.01)[0]["saturated_fraction"]
    assert saturated > 0.9
    assert calm == 0.0


def test_logistic_saturation_uses_five_percent_of_the_steepest_slope() -> None:
    network = _network("logistic", units=2)
    X, y = _batch()
    network.loss_and_gradients(X, y)
    a = network.a[0]
    expected = np.mean(a * (1 - a) < 0.05 * 0.25)
    assert layer_diagnostics(network)[0]["saturated_fraction"] == pytest.approx(expected)


@pytest.mark.parametrize(("hidden", "corner"), [("hard_tanh", 1.0), ("hard_logistic", 2.0)])
def test_hard_activations_are_saturated_exactly_where_they_clip(hidden: str, corner: float) -> None:
    network = _network(hidden, units=8)
    X, y = _batch(scale=3.0)  # z on both sides of the corners
    network.loss_and_gradients(X, y)
    z = network.z[0]
    expected = float(np.mean(np.abs(z) > corner))  # f′ = 0 there, the full slope inside
    assert 0.1 < expected < 0.9
    assert layer_diagnostics(network)[0]["saturated_fraction"] == pytest.approx(expected)


def test_relu_units_with_very_negative_bias_are_dead() -> None:
    network = _network("relu")
    network.params[0]["b"][:8] = -1e3  # half the units can never switch on
    rows = _diagnose_one_step(network)
    assert rows[0]["dead_fraction"] == 0.5
    assert rows[0]["saturated_fraction"] is None


def test_output_layer_has_no_saturation_dead_or_duplicate_fraction() -> None:
    output = _diagnose_one_step(_network("relu"))[-1]
    assert (output["saturated_fraction"], output["dead_fraction"]) == (None, None)
    assert output["duplicate_fraction"] is None


def test_zero_initialisation_makes_every_hidden_unit_a_copy() -> None:
    rows = _diagnose_one_step(_network("tanh", init="zeros", units=4))
    assert rows[0]["duplicate_fraction"] == 0.75  # 4 units, 1 distinct
    assert _diagnose_one_step(_network("tanh", units=4))[0]["duplicate_fraction"] == 0.0


def test_update_ratio_is_none_when_the_weights_were_zero() -> None:
    rows = _diagnose_one_step(_network("tanh", init="zeros"))
    assert rows[0]["update_ratio"] is None
    assert math.isfinite(rows[0]["weight_norm"])


def test_one_copied_unit_among_four_is_a_quarter() -> None:
    network = _network("tanh", units=4)
    network.params[0]["W"][3] = network.params[0]["W"][1]
    network.loss_and_gradients(*_batch())
    assert layer_diagnostics(network)[0]["duplicate_fraction"] == 0.25


def test_an_epochs_gradient_norms_are_recomputed_exactly_from_the_previous_checkpoint() -> None:
    """RELIABILITY N5: what training reported for epoch k equals a recomputation from epoch
    k − 1's checkpoint alone (its weights, its standardizer and the Generator state that draws
    epoch k's order, whose first mini-batch the diagnostics describe)."""
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((96, 5)) * 3 + 1, rng.integers(0, 3, 96)
    spec = TrainingSpec.model_validate({
        "network": {"layers": [{"units": 7, "activation": "tanh"},
                               {"units": 6, "activation": "relu"},
                               {"units": 3, "activation": "softmax"}]},
        "optimizer": {"name": "momentum", "learning_rate": 0.05}, "l2": 1e-3,
        "batch_size": 16, "epochs": 3, "seed": 11, "dtype": "float64",
    })
    reports: list[Any] = []
    train(spec, X, y, task="classification", on_epoch=reports.append)
    for before, reported in zip(reports, reports[1:], strict=False):
        saved = Checkpoint.from_bytes(before.checkpoint)
        network = Network.from_spec(spec.network, 5, loss="cross_entropy", dtype="float64",
                                    rng=np.random.default_rng(0))
        network.set_weights(saved.weights)
        shuffle = np.random.default_rng()
        shuffle.bit_generator.state = saved.rng_state
        order = np.arange(96)
        shuffle.shuffle(order)  # the epoch's order; its first batch is the one diagnosed
        first = order[:16]
        assert saved.mean is not None and saved.scale is not None
        batch = Standardizer(saved.mean, saved.scale).transform(X[first])
        network.loss_and_gradients(batch, y[first], l2=spec.l2)
        for row, grads, delta in zip(reported.layers, network.grads, network.delta, strict=True):
            assert row["grad_norm_w"] == pytest.approx(np.linalg.norm(grads["W"]), rel=1e-12)
            assert row["grad_norm_b"] == pytest.approx(np.linalg.norm(grads["b"]), rel=1e-12)
            assert row["mean_abs_delta"] == pytest.approx(np.abs(delta).mean(), rel=1e-12)
