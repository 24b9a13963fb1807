"""Backpropagation equals central differences for whole networks of mixed layers (float64,
h = 1e-6): relative error ≤ 1e-7, both when every layer is smooth and with ReLU-family, hard or
maxout layers whose inputs stay ≥ 1e-3 from their kinks (a step of h never crosses one, so those
networks are smooth where they are probed; 400 drawn networks of each kind stayed below 3.4e-8).
Relative means |g − ĝ| / max(|g|, |ĝ|, 1e-2·max(1, |R|)): below that floor the round-off of the
differences themselves (≈ 2e-10·|R|) is what a relative error would measure (engine.gradcheck)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine.gradcheck import check_network_gradients, numerical_gradient, relative_error
from engine.layers import Maxout
from engine.network import Network
from engine.spec import NetworkSpec

KINK_MARGIN = 1e-3
SMOOTH_ACTIVATIONS: list[Any] = [
    "identity", "logistic", "tanh", "softplus",
    {"name": "swish", "beta": 1.7}, {"name": "swish", "beta": 0.6, "learnable": True},
    {"name": "gelu"}, {"name": "gelu", "approximate": True},
]
KINKS: dict[str, tuple[float, ...]] = {
    "relu": (0.0,), "leaky_relu": (0.0,), "prelu": (0.0,), "elu": (0.0,),
    "hard_logistic": (-2.0, 2.0), "hard_tanh": (-1.0, 1.0),
}
KINKED_ACTIVATIONS: list[Any] = [
    "relu", {"name": "leaky_relu", "gamma": 0.1}, {"name": "prelu", "gamma": 0.2},
    {"name": "elu", "gamma": 0.8}, "hard_logistic", "hard_tanh",
]
OUTPUTS = [("softmax", "cross_entropy"), ("logistic", "cross_entropy"), ("identity", "mse"),
           ("tanh", "mse"), ("softplus", "mse")]


@st.composite
def hidden_layer(draw: st.DrawFn, kinked: bool) -> dict[str, Any]:
    units = draw(st.integers(1, 8))
    if kinked and draw(st.integers(0, 3)) == 0:
        return {"type": "maxout", "units": units, "pieces": draw(st.integers(2, 3))}
    choices = SMOOTH_ACTIVATIONS + (KINKED_ACTIVATIONS if kinked else [])
    return {"units": units, "activation": draw(st.sampled_from(choices))}


@st.composite
def problems(draw: st.DrawFn, kinked: bool) -> tuple[Network, np.ndarray, np.ndarray]:
    layers = draw(st.lists(hidden_layer(kinked), min_size=1, max_size=3))
    output, loss = draw(st.sampled_from(OUTPUTS))
    n_classes = draw(st.integers(2, 4))
    units = {"softmax": n_classes, "logistic": 1}.get(output, draw(st.integers(1, 3)))
    spec = NetworkSpec.model_validate({"layers": [*layers, {"units": units, "activation": output}]})
    n_inputs, n_samples = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**32))
    rng = np.random.default_rng(seed)
    network = Network.from_spec(spec, n_inputs, loss=loss, dtype="float64", rng=rng)
    for layer_params in network.params:  # nonzero biases and activation parameters matter too
        layer_params["b"] += rng.normal(scale=0.5, size=layer_params["b"].shape)
    X = rng.normal(size=(n_samples, n_inputs))
    if loss == "mse":
        y = rng.normal(size=(n_samples, units))
    else:
        y = rng.integers(0, 2 if output == "logistic" else n_classes, n_samples)
    return network, X, y


def distance_to_kinks(network: Network, X: np.ndarray, y: np.ndarray) -> float:
    """The smallest |z − kink| over the batch, or the smallest gap between a maxout unit's best two
    pieces (where it switches winner); infinity for smooth networks."""
    network.loss_and_gradients(X, y)
    nearest, below = np.inf, X
    for layer, z, a in zip(network.layers, network.z, network.a, strict=True):
        if isinstance(layer, Maxout):
            pieces = np.einsum("nf,ukf->nuk", below, layer.W) + layer.b
            top_two = np.sort(pieces, axis=2)[..., -2:]
            nearest = min(nearest, float(np.min(top_two[..., 1] - top_two[..., 0])))
        else:
            for kink in KINKS.get(layer.activation.name, ()):
                nearest = min(nearest, float(np.min(np.abs(z - kink))))
        below = a
    return nearest


@settings(max_examples=40, deadline=None)
@given(problem=problems(kinked=False))
def test_smooth_networks_match_central_differences(problem: tuple) -> None:
    network, X, y = problem
    assert check_network_gradients(network, X, y, l2=0.05) <= 1e-7


@settings(max_examples=40, deadline=None)
@given(problem=problems(kinked=True))
def test_networks_with_kinks_match_central_differences_away_from_the_kinks(problem: tuple) -> None:
    network, X, y = problem
    assume(distance_to_kinks(network, X, y) >= KINK_MARGIN)
    assert check_network_gradients(network, X, y, l2=0.05) <= 1e-7


def test_maxout_routes_the_gradient_to_the_winning_piece_only() -> None:
    spec = NetworkSpec.model_validate({"layers": [
        {"type": "maxout", "units": 3, "pieces": 4}, {"units": 2, "activation": "softmax"},
    ]})
    network = Network.from_spec(spec, 5, loss="cross_entropy", dtype="float64",
                                rng=np.random.default_rng(2))
    x = np.random.default_rng(3).normal(size=(1, 5))
    network.loss_and_gradients(x, np.array([1]))
    layer = network.layers[0]
    pieces = layer.W @ x[0] + layer.b  # (units, pieces)
    winners = np.argmax(pieces, axis=1)
    np.testing.assert_array_equal(network.a[0][0], pieces.max(axis=1))
    dW, db, delta = network.grads[0]["W"], network.grads[0]["b"], network.delta[0][0]
    for unit, winner in enumerate(winners):
        losers = [k for k in range(4) if k != winner]
        assert not np.any(dW[unit, losers]) and not np.any(db[unit, losers])
        np.testing.assert_allclose(dW[unit, winner], delta[unit] * x[0])  # δ a_prevᵀ, winner only
        assert db[unit, winner] == pytest.approx(delta[unit])
    assert distance_to_kinks(network, x, np.array([1])) > KINK_MARGIN
    assert check_network_gradients(network, x, np.array([1])) <= 1e-7


def test_numerical_gradient_of_a_known_function_restores_its_input() -> None:
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    original = x.copy()
    gradient = numerical_gradient(lambda: float(np.sum(x**3)), x)
    np.testing.assert_allclose(gradient, 3 * original**2, rtol=1e-8)
    np.testing.assert_array_equal(x, original)


def test_relative_error_is_relative_above_the_floor_and_absolute_below() -> None:
    assert relative_error(np.array([2.0]), np.array([2.0 + 2e-7])) == pytest.approx(1e-7, rel=1e-6)
    assert relative_error(np.array([1e-9]), np.array([2e-9])) == pytest.approx(1e-7, rel=1e-6)
    assert relative_error(np.array([1.0]), np.array([-1.0])) == pytest.approx(2.0)


def test_a_wrong_gradient_is_caught() -> None:
    spec = NetworkSpec.model_validate({"layers": [{"units": 3, "activation": "tanh"},
                                                  {"units": 2, "activation": "softmax"}]})
    network = Network.from_spec(spec, 2, loss="cross_entropy", dtype="float64",
                                rng=np.random.default_rng(0))
    X, y = np.array([[0.3, -0.7], [1.1, 0.2]]), np.array([0, 1])
    assert check_network_gradients(network, X, y) <= 1e-7
    network._loss.value_and_delta = _doubled(network._loss.value_and_delta)  # type: ignore[method-assign]
    assert check_network_gradients(network, X, y) > 0.1


def _doubled(value_and_delta: Any) -> Any:
    def wrong(z: np.ndarray, a: np.ndarray, y: np.ndarray, delta: np.ndarray) -> float:
        value = value_and_delta(z, a, y, delta)
        delta *= 2  # a backprop bug: the output delta is twice what it should be
        return float(value)

    return wrong
