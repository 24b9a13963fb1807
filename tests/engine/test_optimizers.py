"""Each optimizer's step against a hand computation, in place, without allocation, dtype kept."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from engine.errors import SerializationError
from engine.optimizers import (
    SGD,
    AdaGrad,
    Adam,
    Momentum,
    Nesterov,
    RMSprop,
    make_optimizer,
)
from engine.spec import AdaGradSpec, AdamSpec, MomentumSpec, NesterovSpec, RMSpropSpec, SGDSpec


def _params(dtype: str = "float64") -> list[dict[str, np.ndarray]]:
    return [{"W": np.array([[1.0, 2.0]], dtype=dtype), "b": np.array([0.5], dtype=dtype)}]


def _grads(w: tuple[float, float], b: float, dtype: str = "float64") -> list[dict[str, np.ndarray]]:
    return [{"W": np.array([w], dtype=dtype), "b": np.array([b], dtype=dtype)}]


def test_sgd_step_is_algorithm_4_1_in_place() -> None:
    params = _params()
    weights = params[0]["W"]
    SGD(params).step(params, _grads((0.1, -0.2), 0.3), learning_rate=0.5)
    # W ← W − α g: 1 − 0.5·0.1 = 0.95, 2 − 0.5·(−0.2) = 2.1; b: 0.5 − 0.5·0.3 = 0.35
    assert params[0]["W"] is weights
    np.testing.assert_allclose(weights, [[0.95, 2.1]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(params[0]["b"], [0.35], rtol=0, atol=1e-15)


def test_momentum_accumulates_velocity_over_two_steps() -> None:
    params = _params()
    opt = Momentum(params, momentum=0.9)
    opt.step(params, _grads((1.0, 0.0), 0.0), learning_rate=0.1)
    # v1 = −0.1·1 = −0.1; W11 = 1 − 0.1 = 0.9
    opt.step(params, _grads((1.0, 0.0), 0.0), learning_rate=0.1)
    # v2 = 0.9·(−0.1) − 0.1 = −0.19; W11 = 0.9 − 0.19 = 0.71
    np.testing.assert_allclose(params[0]["W"], [[0.71, 2.0]], rtol=0, atol=1e-15)


def test_nesterov_adds_the_look_ahead_term() -> None:
    params = _params()
    opt = Nesterov(params, momentum=0.9)
    opt.step(params, _grads((1.0, 0.0), 0.0), learning_rate=0.1)
    # v1 = −0.1; W11 = 1 + 0.9·(−0.1) − 0.1 = 0.81
    np.testing.assert_allclose(params[0]["W"][0, 0], 0.81, rtol=0, atol=1e-15)
    opt.step(params, _grads((1.0, 0.0), 0.0), learning_rate=0.1)
    # v2 = 0.9·(−0.1) − 0.1 = −0.19; W11 = 0.81 + 0.9·(−0.19) − 0.1 = 0.539
    np.testing.assert_allclose(params[0]["W"][0, 0], 0.539, rtol=0, atol=1e-15)


def test_adagrad_divides_by_the_root_of_the_summed_squares() -> None:
    params = _params()
    opt = AdaGrad(params, eps=1e-8)
    opt.step(params, _grads((2.0, 0.0), 0.0), learning_rate=0.1)
    # G = 4; W11 = 1 − 0.1·2/(2 + 1e-8)
    assert params[0]["W"][0, 0] == pytest.approx(1 - 0.2 / (2 + 1e-8), abs=1e-15)
    opt.step(params, _grads((1.0, 0.0), 0.0), learning_rate=0.1)
    # G = 4 + 1 = 5; W11 −= 0.1·1/(√5 + 1e-8)
    expected = 1 - 0.2 / (2 + 1e-8) - 0.1 / (np.sqrt(5) + 1e-8)
    assert params[0]["W"][0, 0] == pytest.approx(expected, abs=1e-15)
    # a zero gradient leaves the weight alone (0/ε = 0)
    assert params[0]["W"][0, 1] == 2.0


def test_rmsprop_uses_a_moving_average_of_squares() -> None:
    params = _params()
    opt = RMSprop(params, rho=0.9, eps=1e-8)
    opt.step(params, _grads((2.0, 0.0), 0.0), learning_rate=0.01)
    # G = 0.1·4 = 0.4; W11 = 1 − 0.01·2/(√0.4 + 1e-8)
    assert params[0]["W"][0, 0] == pytest.approx(1 - 0.02 / (np.sqrt(0.4) + 1e-8), abs=1e-15)
    opt.step(params, _grads((1.0, 0.0), 0.0), learning_rate=0.01)
    # G = 0.9·0.4 + 0.1·1 = 0.46
    expected = 1 - 0.02 / (np.sqrt(0.4) + 1e-8) - 0.01 / (np.sqrt(0.46) + 1e-8)
    assert params[0]["W"][0, 0] == pytest.approx(expected, abs=1e-15)


def test_adam_bias_correction_makes_the_first_step_the_learning_rate() -> None:
    params = _params()
    opt = Adam(params, beta1=0.9, beta2=0.999, eps=1e-8)
    opt.step(params, _grads((0.003, -50.0), 0.0), learning_rate=0.01)
    # m̂ = g and ŝ = g² after one step, so each weight moves by α·g/(|g| + ε) ≈ α·sign(g),
    # whatever the gradient's size; without the correction it would move by α·0.1/√0.001 ≈ 3.2α.
    step = np.array([[1.0, 2.0]]) - params[0]["W"]
    np.testing.assert_allclose(step, [[0.01, -0.01]], rtol=1e-5)


def test_adam_second_step_matches_the_formula() -> None:
    params = _params()
    opt = Adam(params, beta1=0.9, beta2=0.999, eps=1e-8)
    opt.step(params, _grads((1.0, 0.0), 0.0), learning_rate=0.1)
    opt.step(params, _grads((0.5, 0.0), 0.0), learning_rate=0.1)
    m = 0.9 * 0.1 + 0.1 * 0.5  # 0.14
    s = 0.999 * 0.001 + 0.001 * 0.25  # 0.001249
    m_hat, s_hat = m / (1 - 0.9**2), s / (1 - 0.999**2)
    first = 0.1 * 1.0 / (1.0 + 1e-8)
    expected = 1.0 - first - 0.1 * m_hat / (np.sqrt(s_hat) + 1e-8)
    assert params[0]["W"][0, 0] == pytest.approx(expected, abs=1e-12)
    assert opt.t == 2


ALL_SPECS = [
    SGDSpec(),
    SGDSpec(momentum=0.9),
    SGDSpec(momentum=0.9, nesterov=True),
    MomentumSpec(),
    NesterovSpec(),
    AdaGradSpec(),
    RMSpropSpec(),
    AdamSpec(),
]


class _Network:
    """Records the fused step SGD hands it."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, float]] = []

    def descend(self, X: np.ndarray, y: np.ndarray, *, learning_rate: float, l2: float) -> float:
        self.calls.append((learning_rate, l2))
        return 1.25


def test_sgd_runs_its_step_inside_backpropagation_and_counts_it() -> None:
    opt, network = SGD(_params()), _Network()
    assert opt.fuses_into_backprop
    X, y = np.zeros((2, 2)), np.zeros(2, dtype=np.int64)
    assert opt.descend(network, X, y, 0.5, 0.01) == 1.25
    assert network.calls == [(0.5, 0.01)] and opt.t == 1  # t goes into checkpoints


@pytest.mark.parametrize("spec", ALL_SPECS[1:], ids=lambda s: f"{s.name}")
def test_only_plain_sgd_fuses_its_step_into_backpropagation(spec: SGDSpec) -> None:
    opt = make_optimizer(spec, _params())
    assert not opt.fuses_into_backprop  # α inside a velocity or an Adam moment is not θ − g
    with pytest.raises(NotImplementedError, match="learning rate"):
        opt.descend(_Network(), np.zeros((2, 2)), np.zeros(2), 0.1, 0.0)


def test_make_optimizer_maps_each_spec_to_its_rule() -> None:
    kinds = [type(make_optimizer(spec, _params())) for spec in ALL_SPECS]
    assert kinds == [SGD, Momentum, Nesterov, Momentum, Nesterov, AdaGrad, RMSprop, Adam]


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: f"{s.name}")
def test_float32_parameters_and_state_stay_float32(spec: SGDSpec) -> None:
    params = _params("float32")
    opt = make_optimizer(spec, params)
    for _ in range(3):
        opt.step(params, _grads((0.1, -0.2), 0.3, "float32"), learning_rate=0.05)
    assert {a.dtype for layer in params for a in layer.values()} == {np.dtype(np.float32)}
    state = opt.state_arrays()
    assert all(a.dtype == np.float32 for name, a in state.items() if name != "t")


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: f"{s.name}")
def test_step_allocates_no_parameter_sized_arrays(spec: SGDSpec) -> None:
    rng = np.random.default_rng(0)
    params = [{"W": rng.standard_normal((1000, 1000), dtype=np.float32)}]
    grads = [{"W": rng.standard_normal((1000, 1000), dtype=np.float32)}]
    opt = make_optimizer(spec, params)
    opt.step(params, grads, learning_rate=1e-3)
    tracemalloc.start()
    try:
        for _ in range(5):
            opt.step(params, grads, learning_rate=1e-3)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # One 1000×1000 float32 temporary would be 4 MB; the margin absorbs what other threads left
    # running by earlier tests (e.g. a Dask client) allocate while tracemalloc is on (271 kB seen).
    assert peak < 1_000_000


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: f"{s.name}")
def test_restored_state_continues_exactly(spec: SGDSpec) -> None:
    rng = np.random.default_rng(1)
    grads = [[{"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(3)}] for _ in range(4)]
    params_a = [{"W": np.ones((3, 2)), "b": np.zeros(3)}]
    opt_a = make_optimizer(spec, params_a)
    for g in grads[:2]:
        opt_a.step(params_a, g, learning_rate=0.1)
    params_b = [{k: v.copy() for k, v in params_a[0].items()}]
    opt_b = make_optimizer(spec, params_b)
    opt_b.load_state_arrays(opt_a.state_arrays())
    for g in grads[2:]:
        opt_a.step(params_a, g, learning_rate=0.1)
        opt_b.step(params_b, g, learning_rate=0.1)
    assert np.array_equal(params_a[0]["W"], params_b[0]["W"])
    assert np.array_equal(params_a[0]["b"], params_b[0]["b"])


def test_load_state_rejects_a_different_shape() -> None:
    small = Adam(_params(), beta1=0.9, beta2=0.999, eps=1e-8)
    big = Adam([{"W": np.zeros((2, 2)), "b": np.zeros(2)}], beta1=0.9, beta2=0.999, eps=1e-8)
    with pytest.raises(SerializationError, match="expected float64"):
        small.load_state_arrays(big.state_arrays())


def test_load_state_rejects_another_optimizers_state() -> None:
    with pytest.raises(SerializationError, match="expected"):
        Adam(_params(), beta1=0.9, beta2=0.999, eps=1e-8).load_state_arrays(
            Momentum(_params(), momentum=0.9).state_arrays()
        )
