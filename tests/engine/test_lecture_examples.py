"""The lecture's worked examples, computed by the engine's backpropagation."""

from __future__ import annotations

import numpy as np
import pytest

from engine import blas
from engine.network import Network
from engine.optimizers import SGD
from engine.spec import NetworkSpec


def network_with(layers: list[dict], weights: dict[str, list], *, loss: str) -> Network:
    spec = NetworkSpec.model_validate({"layers": layers})
    n_inputs = len(weights["W1"][0])
    network = Network.from_spec(spec, n_inputs, loss=loss, dtype="float64",
                                rng=np.random.default_rng(0))
    network.set_weights({name: np.array(values, dtype=np.float64)
                         for name, values in weights.items()})
    return network


def test_automatic_differentiation_example_df_dw_is_a_quarter() -> None:
    """f(x; w, b) = σ(wx + b) = 1 / (exp(−(wx + b)) + 1); at x = 1, w = 0, b = 0 the lecture's chain
    h₁ = xw, h₂ = h₁ + b, h₃ = −h₂, h₄ = exp(h₃), h₅ = h₄ + 1, h₆ = 1/h₅ gives
    ∂f/∂w = 1 × −0.25 × 1 × 1 × −1 × 1 × 1 = 0.25.

    The engine differentiates a loss, so take L = ½(f − y)² with y = f − 1 = −0.5: then
    ∂L/∂w = (f − y)·∂f/∂w = ∂f/∂w.
    """
    network = network_with([{"units": 1, "activation": "logistic"}],
                           {"W1": [[0.0]], "b1": [0.0]}, loss="mse")
    x, y = np.array([[1.0]]), np.array([[-0.5]])
    network.loss_and_gradients(x, y)
    assert network.a[0][0, 0] == 0.5  # f = σ(0)
    assert network.grads[0]["W"][0, 0] == pytest.approx(0.25, abs=1e-15)
    assert network.grads[0]["b"][0] == pytest.approx(0.25, abs=1e-15)  # ∂h₂/∂b = 1 as well


def sgd_step(network: Network, x: np.ndarray, y: np.ndarray, *, how: str,
             learning_rate: float, l2: float) -> None:
    """One step of the engine's own SGD: gradients then SGD.step, or fused into backpropagation
    (Network.descend) through NumPy or through the BLAS call that training uses on big layers."""
    if how == "gradients then SGD.step":
        assert network.loss_and_gradients(x, y, l2=l2) == pytest.approx(0.18)
        SGD(network.params).step(network.params, network.grads, learning_rate)
    else:
        assert network.descend(x, y, learning_rate=learning_rate, l2=l2) == pytest.approx(0.18)


STEPS = ["gradients then SGD.step", "descend (NumPy)", "descend (BLAS)"]


@pytest.mark.parametrize("how", STEPS)
def test_one_sgd_step_of_algorithm_4_1_by_hand(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 2-2-1 network, ReLU hidden layer, identity output, L = ½(ŷ − y)², one sample, α = λ = 0.1.

    Forward:  x = (1, 2), W¹ = [[0.5, 0.25], [−0.5, 0.25]], b¹ = (0.1, −0.2)
              z¹ = W¹x + b¹ = (0.5 + 0.5 + 0.1, −0.5 + 0.5 − 0.2) = (1.1, −0.2),  a¹ = (1.1, 0)
              W² = [[1, −1]], b² = 0.5:  ŷ = z² = 1.1 − 0 + 0.5 = 1.6;  y = 1:  L = ½·0.6² = 0.18
    Backward: δ² = ŷ − y = 0.6;   ∂L/∂W² = δ² a¹ᵀ = [[0.66, 0]];   ∂L/∂b² = 0.6
              δ¹ = I(z¹ > 0) ⊙ (W²ᵀ δ²) = (1, 0) ⊙ (0.6, −0.6) = (0.6, 0)
              ∂L/∂W¹ = δ¹ xᵀ = [[0.6, 1.2], [0, 0]];   ∂L/∂b¹ = (0.6, 0)
    Update:   W ← W − α(∂L/∂W + λW),  b ← b − α ∂L/∂b
              W¹ = [[0.5 − 0.1(0.6 + 0.05), 0.25 − 0.1(1.2 + 0.025)],
                    [−0.5 − 0.1(0 − 0.05), 0.25 − 0.1(0 + 0.025)]]
                 = [[0.435, 0.1275], [−0.495, 0.2475]]
              b¹ = (0.1 − 0.06, −0.2) = (0.04, −0.2)
              W² = [[1 − 0.1(0.66 + 0.1), −1 − 0.1(0 − 0.1)]] = [[0.924, −0.99]];  b² = 0.44
    After:    z¹ = (0.435 + 0.255 + 0.04, −0.495 + 0.495 − 0.2) = (0.73, −0.2),
              ŷ = 0.924·0.73 + 0.44 = 1.11452,  L = ½·0.11452² = 0.0065574…
    """
    network = network_with(
        [{"units": 2, "activation": "relu"}, {"units": 1, "activation": "identity"}],
        {"W1": [[0.5, 0.25], [-0.5, 0.25]], "b1": [0.1, -0.2], "W2": [[1.0, -1.0]], "b2": [0.5]},
        loss="mse",
    )
    x, y = np.array([[1.0, 2.0]]), np.array([[1.0]])
    if how == "descend (BLAS)":
        if not blas.fused_gemm_available():
            pytest.skip("NumPy here does not use its bundled OpenBLAS")
        monkeypatch.setattr(blas, "FUSED_MIN_ELEMENTS", 0)  # these 2 × 2 weights too
    sgd_step(network, x, y, how=how, learning_rate=0.1, l2=0.1)
    # δ = ∂L/∂z, times α on the fused path (it folds the learning rate into δ)
    scale = 1.0 if how == "gradients then SGD.step" else 0.1
    np.testing.assert_allclose(network.delta[1], [[0.6 * scale]], rtol=1e-14)
    np.testing.assert_allclose(network.delta[0], [[0.6 * scale, 0.0]], rtol=1e-14)
    expected = {"W1": [[0.435, 0.1275], [-0.495, 0.2475]], "b1": [0.04, -0.2],
                "W2": [[0.924, -0.99]], "b2": [0.44]}
    for name, values in network.get_weights().items():
        np.testing.assert_allclose(values, expected[name], rtol=1e-14, atol=1e-15)
    assert network.evaluate_loss(x, y) == pytest.approx(0.5 * 0.11452**2, rel=1e-12)
