"""The training spec: a closed schema whose every error names the valid choices, aliases mapped to
canonical names, and the parameter count P known from the spec alone."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from engine.network import Network
from engine.spec import (
    DenseLayer,
    NetworkSpec,
    Swish,
    TrainingSpec,
    buffer_values_per_row,
    layer_shapes,
    parameter_count,
)

NETWORK = {"layers": [{"units": 3, "activation": "tanh"}, {"units": 2, "activation": "softmax"}]}


def error_of(body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        TrainingSpec.model_validate(body)
    return str(caught.value)


@pytest.mark.parametrize(("body", "expected"), [
    ({"network": NETWORK, "epochz": 3}, ["'epochz'", "epochs", "batch_size", "early_stopping"]),
    ({"network": {**NETWORK, "int": "he"}}, ["'int'", "layers", "init"]),
    ({"network": {"layers": [{"units": 2, "actvation": "tanh"}]}},
     ["'actvation'", "type", "units", "activation"]),
    ({"network": {"layers": [{"units": 2, "activation": {"name": "leaky_relu", "gama": 0.1}}]}},
     ["'gama'", "name", "gamma"]),
    ({"network": NETWORK, "optimizer": {"name": "adam", "beta_1": 0.9}}, ["'beta_1'", "beta1"]),
    ({"network": NETWORK, "optimizer": {"name": "sgd", "schedule": {"name": "step", "step": 2}}},
     ["'step'", "step_size", "gamma"]),
    ({"network": NETWORK, "early_stopping": {"patience": 2, "delta": 0.1}},
     ["'delta'", "patience", "min_delta"]),
])  # fmt: skip
def test_an_unknown_key_is_an_error_listing_the_valid_keys(
    body: dict[str, Any], expected: list[str],
) -> None:
    message = error_of(body)
    for word in ["unknown key", *expected]:
        assert word in message


@pytest.mark.parametrize(("body", "expected"), [
    ({"network": {"layers": [{"units": 2, "activation": "reul"}]}}, ["'reul'", "relu", "gelu"]),
    ({"network": {**NETWORK, "init": "kaiming_he"}}, ["'kaiming_he'", "he_normal", "xavier"]),
    ({"network": NETWORK, "optimizer": {"name": "adamw"}}, ["'adamw'", "'adam'", "'rmsprop'"]),
    ({"network": NETWORK, "optimizer": {"name": "sgd", "schedule": {"name": "linear"}}},
     ["'linear'", "'cosine'", "'step'"]),
    ({"network": {"layers": [{"type": "conv", "units": 2}]}}, ["'conv'", "'dense'", "'maxout'"]),
    ({"network": NETWORK, "loss": "hinge"}, ["cross_entropy", "mse"]),
    ({"network": NETWORK, "dtype": "float16"}, ["float32", "float64"]),
])  # fmt: skip
def test_an_unknown_name_is_an_error_listing_the_valid_names(
    body: dict[str, Any], expected: list[str],
) -> None:
    message = error_of(body)
    for word in expected:
        assert word in message


def test_aliases_become_canonical_names() -> None:
    spec = NetworkSpec.model_validate({"init": "glorot", "layers": [
        {"units": 4, "activation": "sigmoid"}, {"units": 4, "activation": "silu"},
        {"type": "maxout", "units": 2}, {"units": 1, "activation": {"name": "logistic"}}]})
    assert spec.init == "xavier_uniform"
    assert [layer.type for layer in spec.layers] == ["dense", "dense", "maxout", "dense"]
    first, second = spec.layers[0], spec.layers[1]
    assert first.type == "dense" and first.activation.name == "logistic"
    assert second.type == "dense" and second.activation.model_dump() == {
        "name": "swish", "beta": 1.0, "learnable": False}
    assert NetworkSpec.model_validate(spec.model_dump()) == spec  # the stored form reads back


@pytest.mark.parametrize("body", [
    {"layers": [{"units": 2, "activation": "softmax"}, {"units": 2, "activation": "softmax"}]},
    {"layers": [{"units": 2}, {"type": "maxout", "units": 2}]},
    {"layers": []},
    {"layers": [{"units": 0}]},
    {"layers": [{"units": 2, "activation": {"name": "elu", "gamma": float("inf")}}]},
])  # fmt: skip
def test_networks_the_lecture_does_not_define_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        NetworkSpec.model_validate(body)


def test_parameter_count_is_the_lectures_P_for_a_plain_network() -> None:
    spec = NetworkSpec.model_validate({"layers": [
        {"units": 256}, {"units": 128}, {"units": 10, "activation": "softmax"}]})
    # P = Σ_l (M_{l−1} + 1)·M_l = 785·256 + 257·128 + 129·10
    assert parameter_count(spec, 784) == 200_960 + 32_896 + 1_290 == 235_146


def test_parameter_count_adds_maxout_pieces_and_learned_activation_parameters() -> None:
    spec = NetworkSpec.model_validate({"layers": [
        {"units": 6, "activation": "prelu"},                       # (4 + 1)·6 + 6 γ      =  36
        {"type": "maxout", "units": 5, "pieces": 3},               # (6 + 1)·5·3          = 105
        {"units": 4, "activation": {"name": "swish", "learnable": True}},  # (5 + 1)·4 + 4 β = 28
        {"units": 3, "activation": "softmax"},                     # (4 + 1)·3            =  15
    ]})  # fmt: skip
    assert parameter_count(spec, 4) == 36 + 105 + 28 + 15
    assert layer_shapes(spec, 4)[1] == {"W": (5, 3, 6), "b": (5, 3)}
    assert layer_shapes(spec, 4)[2] == {"W": (4, 5), "b": (4,), "beta": (4,)}


def test_buffer_values_per_row_is_what_the_layers_allocate() -> None:
    spec = NetworkSpec.model_validate({"layers": [
        {"units": 6, "activation": "relu"}, {"type": "maxout", "units": 5, "pieces": 3},
        {"units": 3, "activation": "softmax"}]})
    network = Network.from_spec(spec, 4, loss="cross_entropy", dtype="float32",
                                rng=np.random.default_rng(0))
    network.loss_and_gradients(np.zeros((7, 4), dtype=np.float32), np.zeros(7, dtype=np.int64))
    buffers = network._buffers[7]
    allocated = sum(array.size for layer in buffers for array in {id(a): a for a in layer}.values())
    assert allocated == 7 * buffer_values_per_row(spec)


def test_unknown_keys_are_reported_with_the_other_errors_each_at_its_place() -> None:
    body = {"network": {"layers": [{"units": 0, "actvation": "tanh"}]}, "epochz": 3, "epochs": 0}
    with pytest.raises(ValidationError) as caught:
        TrainingSpec.model_validate(body)
    found = {error["loc"]: error["type"] for error in caught.value.errors()}
    assert found == {("epochz",): "unknown_key", ("epochs",): "greater_than_equal",
                     ("network", "layers", 0, "dense", "actvation"): "unknown_key",
                     ("network", "layers", 0, "dense", "units"): "greater_than_equal"}


def test_an_unknown_key_is_quoted_as_sent_and_silu_takes_coercible_values() -> None:
    with pytest.raises(ValidationError) as caught:
        TrainingSpec.model_validate({"network": NETWORK, "{valid}": 1})
    assert caught.value.errors()[0]["msg"].startswith("unknown key '{valid}'; valid keys: ")
    layer = DenseLayer.model_validate(
        {"units": 2, "activation": {"name": "silu", "beta": "1.0", "learnable": "false"}})
    assert layer.activation == Swish(beta=1.0, learnable=False)
