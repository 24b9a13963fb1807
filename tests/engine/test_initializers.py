"""Initialisers draw with the documented scale, from the Generator given, in the requested dtype."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.errors import SpecError
from engine.initializers import INITIALIZERS, initialize_weights, resolve_initializer
from engine.network import Network
from engine.spec import INITIALIZER_NAMES, NetworkSpec

FAN_IN, FAN_OUT = 300, 200
SHAPE = (FAN_OUT, FAN_IN)

# name → (uniform half-width or None, standard deviation)
EXPECTED = {
    "xavier_uniform": (math.sqrt(6 / (FAN_IN + FAN_OUT)), math.sqrt(2 / (FAN_IN + FAN_OUT))),
    "xavier_normal": (None, math.sqrt(2 / (FAN_IN + FAN_OUT))),
    "he_uniform": (math.sqrt(6 / FAN_IN), math.sqrt(2 / FAN_IN)),
    "he_normal": (None, math.sqrt(2 / FAN_IN)),
    "lecun_uniform": (math.sqrt(3 / FAN_IN), math.sqrt(1 / FAN_IN)),
    "lecun_normal": (None, math.sqrt(1 / FAN_IN)),
    "uniform": (0.05, 0.05 / math.sqrt(3)),
    "normal": (None, 0.05),
}


def draw(name: str, dtype: str = "float64", seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return initialize_weights(name, SHAPE, fan_in=FAN_IN, fan_out=FAN_OUT, dtype=dtype, rng=rng)


def test_registry_covers_every_spec_name() -> None:
    assert set(INITIALIZERS) | {"auto"} == set(INITIALIZER_NAMES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_scale_is_the_documented_one(name: str) -> None:
    limit, std = EXPECTED[name]
    weights = draw(name)
    assert weights.shape == SHAPE
    assert abs(weights.mean()) < 0.05 * std  # 60,000 draws: the mean is ~0.004 std from 0
    assert weights.std() == pytest.approx(std, rel=0.02)
    if limit is not None:
        assert np.all(np.abs(weights) <= limit)
        assert np.abs(weights).max() > 0.99 * limit


def test_zeros_are_zero() -> None:
    assert not np.any(draw("zeros"))


def test_same_seed_same_weights_and_float32_is_the_rounded_float64() -> None:
    np.testing.assert_array_equal(draw("he_normal", seed=7), draw("he_normal", seed=7))
    assert not np.array_equal(draw("he_normal", seed=7), draw("he_normal", seed=8))
    single = draw("xavier_uniform", dtype="float32", seed=3)
    assert single.dtype == np.float32
    np.testing.assert_array_equal(single, draw("xavier_uniform", seed=3).astype(np.float32))


@pytest.mark.parametrize(
    ("activation", "maxout", "expected"),
    [("relu", False, "he_normal"), ("leaky_relu", False, "he_normal"),
     ("prelu", False, "he_normal"), ("elu", False, "he_normal"), ("tanh", False, "xavier_uniform"),
     ("logistic", False, "xavier_uniform"), ("softmax", False, "xavier_uniform"),
     (None, True, "he_normal")],
)
def test_auto_picks_he_for_the_relu_family_and_maxout(
    activation: str | None, maxout: bool, expected: str
) -> None:
    assert resolve_initializer("auto", activation=activation, maxout=maxout) == expected
    assert resolve_initializer("lecun_normal", activation=activation) == "lecun_normal"


def test_unknown_initializer_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="valid names"):
        resolve_initializer("orthogonal", activation="relu")


def test_network_biases_start_at_zero_and_weights_follow_the_layer_rule() -> None:
    spec = NetworkSpec.model_validate({"layers": [
        {"units": 400, "activation": "relu"}, {"units": 300, "activation": "tanh"},
        {"units": 3, "activation": "softmax"},
    ]})
    network = Network.from_spec(spec, 500, loss="cross_entropy", rng=np.random.default_rng(0))
    for layer_params in network.params:
        assert not np.any(layer_params["b"])
    relu_weights, tanh_weights = network.params[0]["W"], network.params[1]["W"]
    assert relu_weights.std() == pytest.approx(math.sqrt(2 / 500), rel=0.02)  # He normal
    assert np.abs(tanh_weights).max() <= math.sqrt(6 / (400 + 300))  # Xavier uniform
