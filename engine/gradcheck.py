"""Gradient checking: backpropagation against central finite differences.

    ∂f/∂θᵢ ≈ (f(θ + h eᵢ) − f(θ − h eᵢ)) / 2h        error O(h²) + round-off O(ε|f|/h)

Use float64: in float32 the round-off term alone (≈ 1e-7·|f|/h) swamps any useful h.
Relative error of one element: |g − ĝ| / max(|g|, |ĝ|, floor). Below the floor the comparison is
absolute: with h = 1e-6 the round-off of central differences on a loss R is ≈ ε|R|/h ≈ 2e-10·|R|,
so for a gradient smaller than ~1e-2·|R| the relative error says more about h than about backprop.
`check_network_gradients` therefore uses floor = GRADIENT_FLOOR · max(1, |R|).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.network import Network

__all__ = ["GRADIENT_FLOOR", "check_network_gradients", "numerical_gradient", "relative_error"]

Array = np.ndarray

GRADIENT_FLOOR = 1e-2


def numerical_gradient(f: Callable[[], float], x: Array, h: float = 1e-6) -> Array:
    """∂f/∂x by central differences, perturbing `x` in place (each element restored afterwards).

    `f` takes no arguments and reads `x` (e.g. a loss of a network whose parameter `x` is).
    """
    gradient = np.zeros(x.shape, dtype=np.float64)
    for index in np.ndindex(*x.shape):
        original = x[index]
        x[index] = original + h
        f_plus = f()
        x[index] = original - h
        f_minus = f()
        x[index] = original
        gradient[index] = (f_plus - f_minus) / (2.0 * h)
    return gradient


def relative_error(analytic: Array, numeric: Array, floor: float = GRADIENT_FLOOR) -> float:
    """max_i |g − ĝ| / max(|g|, |ĝ|, floor)."""
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    if analytic.size == 0:
        return 0.0
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), floor)
    return float(np.max(np.abs(analytic - numeric) / scale))


def check_network_gradients(network: Network, X: Array, y: Array, l2: float = 0.0) -> float:
    """The largest relative error between backprop and central differences over every parameter
    of `network` for R = mean loss on (X, y) + ½λΣ‖W‖²_F."""
    network.loss_and_gradients(X, y, l2=l2)
    analytic = [{name: g.copy() for name, g in grads.items()} for grads in network.grads]

    def risk() -> float:
        return network.evaluate_loss(X, y) + network.l2_penalty(l2)

    floor = GRADIENT_FLOOR * max(1.0, abs(risk()))
    worst = 0.0
    for layer_params, layer_grads in zip(network.params, analytic, strict=True):
        for name, values in layer_params.items():
            numeric = numerical_gradient(risk, values)
            worst = max(worst, relative_error(layer_grads[name], numeric, floor))
    return worst
