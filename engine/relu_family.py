"""The ReLU family: ReLU, LeakyReLU(γ), PReLU (γ learned per unit), ELU(γ) and softplus, its smooth
relative. He initialisation suits them (engine.initializers)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit

from engine.activation_base import Activation, Array, deliver, separate_out

__all__ = ["ELU", "LeakyReLU", "PReLU", "ReLU", "Softplus"]


class _PiecewiseLinear(Activation):
    """Activations with f(z) = f′(z)·z (one slope on each side of 0): the ReLU family.

    In training, the slope f′(z) is computed once into `scratch` and serves twice: a = z ⊙ f′(z)
    forward, upstream ⊙ f′(z) backward (two cheap multiplies instead of max, compare, multiply).
    """

    def forward(self, z: Array, out: Array | None = None) -> Array:
        slope = self.derivative(z, z, out=separate_out(out, z))
        return deliver(np.multiply(z, slope, out=slope), out)

    def forward_train(self, z: Array, a: Array, scratch: Array) -> None:
        self.derivative(z, a, out=scratch)
        np.multiply(z, scratch, out=a)

    def backprop(self, z: Array, a: Array, upstream: Array, scratch: Array) -> None:
        np.multiply(upstream, scratch, out=upstream)  # scratch holds f′(z) from forward_train


class ReLU(_PiecewiseLinear):
    """f(z) = max(0, z), f′(z) = I(z > 0)."""

    name = "relu"

    def derivative(self, z: Array, a: Array, out: Array | None = None) -> Array:
        result: Array = np.greater(z, 0, out=out if out is not None else np.empty_like(z))
        return result


class LeakyReLU(_PiecewiseLinear):
    """f(z) = max(0, z) + γ min(0, z), f′(z) = I(z > 0) + γ·I(z ≤ 0); fixed γ ∈ [0, 1]."""

    name = "leaky_relu"

    def __init__(self, units: int, dtype: np.dtype[Any], gamma: float = 0.01) -> None:
        super().__init__(units, dtype)
        self.gamma: float | Array = gamma  # PReLU: an array, one γ per unit (it broadcasts alike)

    def derivative(self, z: Array, a: Array, out: Array | None = None) -> Array:
        out = np.greater(z, 0, out=out if out is not None else np.empty_like(z))
        out *= 1 - self.gamma  # γ + (1 − γ)·I(z > 0)
        out += self.gamma
        return out


class PReLU(LeakyReLU):
    """f(z)ᵢ = zᵢ if zᵢ > 0 else γᵢ zᵢ, with γ learned per unit (LeakyReLU's f′, γ per column).

    f′(z) = I(z > 0) + γ·I(z ≤ 0);  ∂aᵢ/∂γᵢ = min(0, zᵢ).
    """

    name = "prelu"
    param_name = "gamma"

    def __init__(self, units: int, dtype: np.dtype[Any], gamma: float = 0.25) -> None:
        super().__init__(units, dtype, gamma)
        self.gamma = np.full(units, gamma, dtype=self.dtype)
        self.param = self.gamma  # the same array: optimizers update it in place

    def param_gradient(
        self, z: Array, a: Array, upstream: Array, out: Array | None = None
    ) -> Array:
        negative_part = np.minimum(z, 0, dtype=z.dtype)
        negative_part *= upstream
        return np.sum(negative_part, axis=0, out=out)


class Softplus(Activation):
    """f(z) = log(1 + exp(z)) (as logaddexp(0, z), stable for large |z|), f′(z) = σ(z)."""

    name = "softplus"

    def forward(self, z: Array, out: Array | None = None) -> Array:
        result: Array = np.logaddexp(z.dtype.type(0), z, out=out)
        return result

    def derivative(self, z: Array, a: Array, out: Array | None = None) -> Array:
        return expit(z, out=out)  # type: ignore[no-any-return]


class ELU(Activation):
    """f(z) = z if z > 0 else γ(exp(z) − 1);  f′(z) = I(z > 0) + I(z ≤ 0)·γ exp(z)."""

    name = "elu"

    def __init__(self, units: int, dtype: np.dtype[Any], gamma: float = 1.0) -> None:
        super().__init__(units, dtype)
        self.gamma = gamma

    def forward(self, z: Array, out: Array | None = None) -> Array:
        positive = np.maximum(z, 0, dtype=z.dtype)  # before `out` (which may be z) is written
        out = np.minimum(z, 0, out=out, dtype=z.dtype)
        np.expm1(out, out=out)
        out *= self.gamma
        out += positive
        return out

    def derivative(self, z: Array, a: Array, out: Array | None = None) -> Array:
        above = z > 0  # before `out` (which may be z) is written
        out = np.add(a, self.gamma, out=out, dtype=z.dtype)  # for z ≤ 0, γ exp(z) = a + γ
        np.copyto(out, 1, where=above)
        return out
