"""Self-gated activations: swish z·σ(βz) (β fixed or learned per unit) and GELU z·Φ(z)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import expit, ndtr

from engine.activation_base import Activation, Array, deliver, separate_out

__all__ = ["GELU", "Swish"]


class Swish(Activation):
    """f(z) = z σ(βz);  f′(z) = s + βz s(1 − s) with s = σ(βz);  ∂a/∂β = z² s(1 − s).

    β is one number (fixed) or one per unit (learned, `param`).
    """

    name = "swish"

    def __init__(
        self, units: int, dtype: np.dtype[Any], beta: float = 1.0, learnable: bool = False
    ) -> None:
        super().__init__(units, dtype)
        self.beta: float | Array = beta
        if learnable:
            self.param = np.full(units, beta, dtype=self.dtype)
            self.beta = self.param
            self.param_name = "beta"

    def _sigmoid_of_beta_z(self, z: Array) -> Array:
        s = np.multiply(z, self.beta, dtype=z.dtype)
        return expit(s, out=s)  # type: ignore[no-any-return]

    def forward(self, z: Array, out: Array | None = None) -> Array:
        result: Array = np.multiply(z, self._sigmoid_of_beta_z(z), out=out)
        return result

    def derivative(self, z: Array, a: Array, out: Array | None = None) -> Array:
        s = self._sigmoid_of_beta_z(z)
        slope = np.subtract(1, s, out=separate_out(out, a), dtype=z.dtype)  # 1 − s
        slope *= a                                                          # z s (1 − s)
        slope *= self.beta                                                  # βz s (1 − s)
        slope += s
        return deliver(slope, out)

    def param_gradient(
        self, z: Array, a: Array, upstream: Array, out: Array | None = None
    ) -> Array:
        s = self._sigmoid_of_beta_z(z)
        d_beta = np.subtract(1, s, dtype=z.dtype)
        d_beta *= a   # z s (1 − s)
        d_beta *= z   # z² s (1 − s)
        d_beta *= upstream
        return np.sum(d_beta, axis=0, out=out)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
# Beyond |z| = 40, tanh u is exactly ±1 and φ(z) underflows to 0 in float32 and float64 alike:
# the gate and the pdf are computed from z clipped there, so z³ or z² never overflow (which made
# the tanh form's derivative inf·0 = NaN from |z| ≈ 1e20 in float32) and nothing else changes.
_GELU_SATURATION = 40.0
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_CUBIC = 0.044715


class GELU(Activation):
    """Exact: f(z) = z Φ(z), f′(z) = Φ(z) + z φ(z), Φ/φ the standard normal cdf/pdf.

    Approximate: f(z) = ½z(1 + tanh u), u = √(2/π)(z + 0.044715z³),
    f′(z) = ½(1 + tanh u) + ½z(1 − tanh²u)·√(2/π)(1 + 3·0.044715z²).
    """

    name = "gelu"

    def __init__(self, units: int, dtype: np.dtype[Any], approximate: bool = False) -> None:
        super().__init__(units, dtype)
        self.approximate = approximate

    def _tanh_u(self, z: Array) -> Array:
        """tanh u for z (already clipped to ±_GELU_SATURATION)."""
        u = np.multiply(z, z, dtype=z.dtype)
        u *= _GELU_CUBIC
        u += 1
        u *= z
        u *= _SQRT_2_OVER_PI
        result: Array = np.tanh(u, out=u)
        return result

    @staticmethod
    def _clipped(z: Array) -> Array:
        clipped: Array = np.clip(z, -_GELU_SATURATION, _GELU_SATURATION, dtype=z.dtype)
        return clipped

    def forward(self, z: Array, out: Array | None = None) -> Array:
        if self.approximate:
            gate = self._tanh_u(self._clipped(z))
            gate += 1
            gate *= 0.5
        else:
            gate = ndtr(z)
        result: Array = np.multiply(z, gate, out=out, dtype=z.dtype)
        return result

    def derivative(self, z: Array, a: Array, out: Array | None = None) -> Array:
        if self.approximate:
            return self._approximate_derivative(z, out)
        return self._exact_derivative(z, out)

    def _exact_derivative(self, z: Array, out: Array | None) -> Array:
        """Φ(z) + z φ(z)."""
        zc = self._clipped(z)
        pdf = np.multiply(zc, zc, dtype=z.dtype)
        pdf *= -0.5
        np.exp(pdf, out=pdf)
        pdf *= _INV_SQRT_2PI
        pdf *= zc
        result: Array = np.add(ndtr(z), pdf, out=out, dtype=z.dtype)
        return result

    def _approximate_derivative(self, z: Array, out: Array | None) -> Array:
        """½(1 + t) + ½z(1 − t²)·√(2/π)(1 + 3·0.044715z²), t = tanh u."""
        z = self._clipped(z)
        t = self._tanh_u(z)
        du = np.multiply(z, z, dtype=z.dtype)
        du *= 3 * _GELU_CUBIC * _SQRT_2_OVER_PI
        du += _SQRT_2_OVER_PI
        du *= np.subtract(1, t * t, dtype=z.dtype)
        du *= z
        du += 1 + t
        result: Array = np.multiply(du, 0.5, out=out, dtype=z.dtype)
        return result
