"""Every activation of the lecture: forward as its formula, derivative as finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from engine.activations import ACTIVATIONS, Activation, make_activation
from engine.errors import SpecError
from engine.spec import ACTIVATION_NAMES, DenseLayer

H = 1e-6
UNITS = 4

# (spec, points where the function is not differentiable)
SMOOTH = [
    {"name": "identity"}, {"name": "logistic"}, {"name": "tanh"}, {"name": "softplus"},
    {"name": "swish", "beta": 1.0}, {"name": "swish", "beta": 2.5},
    {"name": "swish", "beta": 0.7, "learnable": True},
    {"name": "gelu", "approximate": False}, {"name": "gelu", "approximate": True},
]
KINKED = [
    ({"name": "relu"}, (0.0,)),
    ({"name": "leaky_relu", "gamma": 0.2}, (0.0,)),
    ({"name": "prelu", "gamma": 0.3}, (0.0,)),
    ({"name": "elu", "gamma": 0.5}, (0.0,)),
    ({"name": "elu", "gamma": 1.0}, (0.0,)),  # C¹ at 0, but f″ jumps there
    ({"name": "hard_logistic"}, (-2.0, 2.0)),
    ({"name": "hard_tanh"}, (-1.0, 1.0)),
]
ALL_SPECS = SMOOTH + [spec for spec, _ in KINKED]


def build(spec: dict, dtype: str = "float64", units: int = UNITS) -> Activation:
    layer = DenseLayer.model_validate({"units": units, "activation": spec})
    return make_activation(layer.activation, units, dtype)


def central_difference(activation: Activation, z: np.ndarray) -> np.ndarray:
    return (activation.forward(z + H) - activation.forward(z - H)) / (2 * H)


z_batches = arrays(
    np.float64, st.tuples(st.integers(1, 6), st.just(UNITS)),
    elements=st.floats(-6.0, 6.0, allow_nan=False),
)


@pytest.mark.parametrize("spec", SMOOTH, ids=lambda s: str(s))
@settings(max_examples=40, deadline=None)
@given(z=z_batches)
def test_smooth_derivative_matches_central_differences(spec: dict, z: np.ndarray) -> None:
    activation = build(spec)
    a = activation.forward(z)
    np.testing.assert_allclose(
        activation.derivative(z, a), central_difference(activation, z), rtol=1e-7, atol=1e-9
    )


def away_from(kinks: tuple[float, ...]) -> st.SearchStrategy[np.ndarray]:
    """Batches whose entries keep |z − kink| ≥ 1e-3 (element-wise, so few draws are wasted)."""
    elements = st.floats(-6.0, 6.0, allow_nan=False).filter(
        lambda v: all(abs(v - kink) >= 1e-3 for kink in kinks)
    )
    shapes = st.tuples(st.integers(1, 6), st.just(UNITS))
    return arrays(np.float64, shapes, elements=elements, fill=st.nothing())


@pytest.mark.parametrize(("spec", "kinks"), KINKED, ids=lambda s: str(s))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_kinked_derivative_matches_central_differences_away_from_kinks(
    spec: dict, kinks: tuple[float, ...], data: st.DataObject
) -> None:
    z = data.draw(away_from(kinks))
    assume(all(np.min(np.abs(z - kink)) >= 1e-3 for kink in kinks))
    activation = build(spec)
    a = activation.forward(z)
    np.testing.assert_allclose(
        activation.derivative(z, a), central_difference(activation, z), rtol=1e-4, atol=1e-9
    )


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# The lecture's formulas, written naively for moderate x.
FORMULAS = {
    "logistic": lambda x: _sigmoid(x),
    "tanh": lambda x: (math.exp(x) - math.exp(-x)) / (math.exp(x) + math.exp(-x)),
    "hard_logistic": lambda x: max(min(0.25 * x + 0.5, 1.0), 0.0),
    "hard_tanh": lambda x: max(min(x, 1.0), -1.0),
    "relu": lambda x: max(0.0, x),
    "leaky_relu": lambda x: max(0.0, x) + 0.2 * min(0.0, x),
    "prelu": lambda x: x if x > 0 else 0.3 * x,
    "softplus": lambda x: math.log(1.0 + math.exp(x)),
    "elu": lambda x: max(0.0, x) + min(0.0, 0.5 * (math.exp(x) - 1.0)),
    "swish": lambda x: x * _sigmoid(2.5 * x),
    "gelu": lambda x: x * 0.5 * (1.0 + math.erf(x / math.sqrt(2.0))),
    "identity": lambda x: x,
}
FORMULA_SPECS = {
    "leaky_relu": {"name": "leaky_relu", "gamma": 0.2}, "prelu": {"name": "prelu", "gamma": 0.3},
    "elu": {"name": "elu", "gamma": 0.5}, "swish": {"name": "swish", "beta": 2.5},
}


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_forward_is_the_lecture_formula(name: str) -> None:
    z = np.linspace(-4.5, 4.5, 4 * 19).reshape(19, 4)
    activation = build(FORMULA_SPECS.get(name, {"name": name}))
    expected = np.vectorize(FORMULAS[name])(z)
    np.testing.assert_allclose(activation.forward(z), expected, rtol=1e-12, atol=1e-14)


def test_gelu_tanh_approximation_is_its_formula_and_close_to_exact() -> None:
    z = np.linspace(-5, 5, 101).reshape(-1, 1)
    approx = build({"name": "gelu", "approximate": True}, units=1)
    exact = build({"name": "gelu"}, units=1)
    u = math.sqrt(2 / math.pi) * (z + 0.044715 * z**3)
    np.testing.assert_allclose(approx.forward(z), 0.5 * z * (1 + np.tanh(u)), rtol=1e-12)
    assert np.max(np.abs(approx.forward(z) - exact.forward(z))) < 1e-3


def test_lecture_derivative_table() -> None:
    """Table 4.3: σ′ = σ(1 − σ), tanh′ = 1 − tanh², ReLU′ = I(x > 0), ELU′, softplus′ = σ."""
    z = np.array([[-2.0, -0.5, 0.5, 2.0]])
    for spec, expected in [
        ({"name": "logistic"}, _np_sigmoid(z) * (1 - _np_sigmoid(z))),
        ({"name": "tanh"}, 1 - np.tanh(z) ** 2),
        ({"name": "relu"}, (z > 0).astype(float)),
        ({"name": "elu", "gamma": 0.5}, (z > 0) + (z <= 0) * 0.5 * np.exp(z)),
        ({"name": "softplus"}, _np_sigmoid(z)),
    ]:
        activation = build(spec)
        np.testing.assert_allclose(activation.derivative(z, activation.forward(z)), expected)


def _np_sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: str(s))
def test_in_place_backprop_multiplies_by_the_derivative(spec: dict) -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(size=(5, UNITS)) * 3
    activation = build(spec)
    a, scratch, upstream = np.empty_like(z), np.empty_like(z), rng.normal(size=z.shape)
    activation.forward_train(z, a, scratch)
    np.testing.assert_allclose(a, activation.forward(z), rtol=1e-15)
    expected = upstream * activation.derivative(z, a)
    activation.backprop(z, a, upstream, scratch)
    np.testing.assert_allclose(upstream, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "spec", [{"name": "prelu", "gamma": 0.3}, {"name": "swish", "beta": 0.8, "learnable": True}]
)
def test_learned_parameter_gradient_matches_central_differences(spec: dict) -> None:
    rng = np.random.default_rng(4)
    z = rng.normal(size=(7, UNITS)) * 2
    z[np.abs(z) < 1e-3] = 0.5  # away from PReLU's kink
    upstream = rng.normal(size=z.shape)
    activation = build(spec)
    assert activation.param is not None
    activation.param += rng.normal(size=UNITS) * 0.1  # in place: distinct values per unit

    def weighted_output() -> float:  # L = Σ upstream ⊙ f(z; θ), so ∂L/∂θ = param_gradient
        return float(np.sum(upstream * activation.forward(z)))

    numeric = np.zeros(UNITS)
    for unit in range(UNITS):
        original = activation.param[unit]
        activation.param[unit] = original + H
        plus = weighted_output()
        activation.param[unit] = original - H
        minus = weighted_output()
        activation.param[unit] = original
        numeric[unit] = (plus - minus) / (2 * H)
    analytic = activation.param_gradient(z, activation.forward(z), upstream, out=np.empty(UNITS))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("spec", ALL_SPECS + [{"name": "softmax"}], ids=lambda s: str(s))
def test_float32_stays_float32(spec: dict) -> None:
    activation = build(spec, dtype="float32")
    z = np.linspace(-3, 3, 8 * UNITS, dtype=np.float32).reshape(8, UNITS)
    a = activation.forward(z)
    assert a.dtype == np.float32
    if spec["name"] != "softmax":
        assert activation.derivative(z, a).dtype == np.float32
    for param in activation.params.values():
        assert param.dtype == np.float32


def test_softplus_and_logistic_are_stable_for_huge_inputs() -> None:
    z = np.array([[-1000.0, 1000.0]])
    softplus, logistic = build({"name": "softplus"}, units=2), build({"name": "logistic"}, units=2)
    np.testing.assert_array_equal(softplus.forward(z), [[0.0, 1000.0]])
    np.testing.assert_array_equal(logistic.forward(z), [[0.0, 1.0]])


def test_softmax_rows_are_probabilities_even_at_extreme_logits() -> None:
    softmax = build({"name": "softmax"}, units=3)
    p = softmax.forward(np.array([[1000.0, -1000.0, 0.0], [0.1, 0.2, 0.3]]))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[0], [1.0, 0.0, 0.0])
    with pytest.raises(NotImplementedError, match="fused"):
        softmax.derivative(p, p)


def test_registry_holds_exactly_the_spec_names() -> None:
    assert set(ACTIVATIONS) == set(ACTIVATION_NAMES)
    for name, cls in ACTIVATIONS.items():
        assert cls.name == name


def test_parameters_come_from_the_spec() -> None:
    assert build({"name": "leaky_relu", "gamma": 0.2}).gamma == 0.2  # type: ignore[attr-defined]
    prelu = build({"name": "prelu", "gamma": 0.3})
    np.testing.assert_array_equal(prelu.params["gamma"], np.full(UNITS, 0.3))
    assert build({"name": "swish", "beta": 2.0}).params == {}
    np.testing.assert_array_equal(
        build({"name": "swish", "learnable": True}).params["beta"], np.ones(UNITS)
    )
    assert build({"name": "silu"}).params == {}  # SiLU is swish with β fixed at 1
    with pytest.raises(ValueError, match="'silu' fixes learnable; use 'swish'"):
        build({"name": "silu", "learnable": True})


def test_unknown_names_are_spec_errors() -> None:
    class Unknown:
        name = "sine"

    with pytest.raises(SpecError, match="valid names"):
        make_activation(Unknown(), 3, "float64")


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: str(s))
def test_results_are_the_same_when_out_is_an_input(spec: dict) -> None:
    """forward(z, out=z) and derivative(z, a, out=z or a) — in place, as callers may do."""
    activation = build(spec)
    z = np.array([[0.5, -0.5, 2.0, -3.0], [1.9999999999999998, -1.5, 0.25, 7.0]])
    a = activation.forward(z)
    slope = activation.derivative(z, a)
    in_place = z.copy()
    np.testing.assert_array_equal(activation.forward(in_place, out=in_place), a)
    for target in ("z", "a"):
        z_copy, a_copy = z.copy(), a.copy()
        out = z_copy if target == "z" else a_copy
        np.testing.assert_array_equal(activation.derivative(z_copy, a_copy, out=out), slope,
                                      err_msg=f"out is {target}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: str(s))
def test_huge_inputs_give_finite_values_and_no_warnings(spec: dict, dtype: str) -> None:
    activation = build(spec, dtype=dtype)
    big = np.finfo(dtype).max / 4
    z = np.array([[big, -big, 1e20, -1e20]] * 2, dtype=dtype) if dtype == "float64" else \
        np.array([[big, -big, 3e13, -3e13]] * 2, dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is right
        a = activation.forward(z)
        slope = activation.derivative(z, a)
    assert a.dtype == slope.dtype == np.dtype(dtype)
    assert np.isfinite(slope).all(), slope
