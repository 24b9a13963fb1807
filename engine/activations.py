"""Activation functions of the lecture, each with its exact derivative.

Each class works element-wise on a batch `z` of shape (n_samples, units), keeping its dtype:
    forward(z, out)          a = f(z)
    derivative(z, a, out)    f′(z); `a` is the cached output, used where it is cheaper than z
    forward_train(z, a, scratch)        a = f(z) in a training step; may keep f′(z) in `scratch`
    backprop(z, a, upstream, scratch)   upstream ← upstream ⊙ f′(z), in place, after forward_train
                                        on the same buffers (the training hot path)
PReLU and learnable swish also own one learned parameter per unit (`param`, shape (units,)) and give
    param_gradient(z, a, upstream, out)  ∂L/∂param = Σ_rows upstream ⊙ ∂a/∂param.
Softmax is only an output: its derivative is fused with cross-entropy in engine.losses.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from scipy.special import expit, ndtr

from engine.errors import SpecError

__all__ = ["ACTIVATIONS", "Activation", "make_activation"]

Array = np.ndarray


class Activation:
    """Base class: f and f′. Subclasses set `name` and implement forward/derivative."""

    name: ClassVar[str] = ""
    param_name: str | None = None  # "gamma" / "beta" when a parameter is learned per unit

    def __init__(self, units: int, dtype: np.dtype[Any]) -> None:
        self.units = units
        self.dtype = np.dtype(dtype)
        self.param: Array | None = None

    def forward(self, z: Array, out: Array | None = None) -> Array:
        raise NotImplementedError

    def derivative(self, z: Array, a: Array, out: Array | None = None) -> Array:
        raise NotImplementedError

    def forward_train(self, z: Array, a: Array, scratch: Array) -> None:
        """a = f(z); `scratch` belongs to this batch's layer buffers until `backprop`."""
        self.forward(z, out=a)

    def backprop(self, z: Array, a: Array, upstream: Array, scratch: Array) -> None:
        """upstream ← upstream ⊙ f′(z): turns ∂L/∂a into ∂L/∂z in place."""
        np.multiply(upstream, self.derivative(z, a, out=scratch), out=upstream)

    def param_gradient(self, z: Array, a: Array, upstream: Array, out: Array) -> Array:
        raise NotImplementedError(f"{self.name} has no learned parameter")

    @property
    def params(self) -> dict[str, Array]:
        """The learned parameter under its public name, or nothing."""
        if self.param_name is None or self.param is None:
            return {}
        return {self.param_name: self.param}


class Identity(Activation):
    """f(z) = z, f′(z) = 1."""

    name = "identity"

    def forward(self, z: Array, out: Array | None = None) -> Array:
        if out is None:
            return z.copy()
        if out is not z:  # layers share one buffer for z and a
            np.copyto(out, z)
        return out

    def derivative(self, z: Array, a: Array, out: Array | None = None) -> Array:
        out = np.empty_like(z) if out is None else out
        out.fill(1)
        return out

    def backprop(self, z: Array, a: Array, upstream: Array, scratch: Array) -> None:
        return None  # f′ = 1: ∂L/∂z is ∂L/∂a


class Logistic(Activation):
    """σ(z) = 1 / (1 + exp(−z)), σ′(z) = σ(z)(1 − σ(z))."""

    name = "logistic"

    def forward(self, z: Array, out: Array | None = None) -> Array:
        return expit(z, out=out)  # type: ignore[no-any-return]

    def derivative(self, z: Array, a: Array, out: Array | None = None) -> Array:
        out = np.subtract(1, a, out=out, dtype=a.dtype)
        result: Array = np.multiply(out, a, out=out)
        return result


class Tanh(Activation):
    """tanh(z), tanh′(z) = 1 − tanh(z)²."""

    name = "tanh"

    def forward(self, z: Array, out: Array | None = None) -> Array:
        result: Array = np.tanh(z, out=out)
        return result

    def derivative(self, z: Array, a: Array, out: Array | None = None) -> Array:
        out = np.multiply(a, a, out=out)
        result: Array = np.subtract(1, out, out=out, dtype=a.dtype)
        return result

    def backprop(self, z: Array, a: Array, upstream: Array, scratch: Array) -> None:
        # upstream·(1 − a²) = upstream − upstream·a², without a third pass for "1 −".
        np.multiply(a, a, out=scratch)
        np.multiply(scratch, upstream, out=scratch)
        np.subtract(upstream, scratch, out=upstream)


class HardLogistic(Activation):
    """f(z) = max(min(0.25z + 0.5, 1), 0), f′(z) = 0.25·I(−2 < z < 2)."""

    name = "hard_logistic"

    def forward(self, z: Array, out: Array | None = None) -> Array:
        out = np.multiply(z, 0.25, out=out, dtype=z.dtype)
        np.add(out, 0.5, out=out, dtype=z.dtype)
        return np.clip(out, 0, 1, out=out)

    def derivative(self, z: Array, a: Array, out: Array | None = None) -> Array:
        inside = (a > 0) & (a < 1)
        return np.multiply(inside, 0.25, out=out, dtype=a.dtype)


class HardTanh(Activation):
    """f(z) = max(min(z, 1), −1), f′(z) = I(−1 < z < 1)."""

    name = "hard_tanh"

    def forward(self, z: Array, out: Array | None = None) -> Array:
        return np.clip(z, -1, 1, out=out)

    def derivative(self, z: Array, a: Array, out: Array | None = None) -> Array:
        inside = (a > -1) & (a < 1)
        return np.multiply(inside, 1, out=out, dtype=a.dtype)


class _PiecewiseLinear(Activation):
    """Activations with f(z) = f′(z)·z (one slope on each side of 0): the ReLU family.

    In training, the slope f′(z) is computed once into `scratch` and serves twice: a = z ⊙ f′(z)
    forward, upstream ⊙ f′(z) backward (two cheap multiplies instead of max, compare, multiply).
    """

    def forward(self, z: Array, out: Array | None = None) -> Array:
        slope = self.derivative(z, z, out=out)
        result: Array = np.multiply(z, slope, out=slope)
        return result

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
        self.gamma = gamma

    def derivative(self, z: Array, a: Array, out: Array | None = None) -> Array:
        out = np.greater(z, 0, out=out if out is not None else np.empty_like(z))
        out *= 1 - self.gamma
        out += self.gamma
        return out


class PReLU(_PiecewiseLinear):
    """f(z)ᵢ = zᵢ if zᵢ > 0 else γᵢ zᵢ, with γ learned per unit.

    f′(z) = I(z > 0) + γ·I(z ≤ 0);  ∂aᵢ/∂γᵢ = min(0, zᵢ).
    """

    name = "prelu"
    param_name = "gamma"

    def __init__(self, units: int, dtype: np.dtype[Any], gamma: float = 0.25) -> None:
        super().__init__(units, dtype)
        self.gamma: Array = np.full(units, gamma, dtype=self.dtype)
        self.param = self.gamma  # the same array: optimizers update it in place

    def derivative(self, z: Array, a: Array, out: Array | None = None) -> Array:
        out = np.greater(z, 0, out=out if out is not None else np.empty_like(z))
        out *= 1 - self.gamma  # γ + (1 − γ)·I(z > 0)
        out += self.gamma
        return out

    def param_gradient(self, z: Array, a: Array, upstream: Array, out: Array) -> Array:
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
        out = np.minimum(z, 0, out=out, dtype=z.dtype)
        np.expm1(out, out=out)
        out *= self.gamma
        out += np.maximum(z, 0, dtype=z.dtype)
        return out

    def derivative(self, z: Array, a: Array, out: Array | None = None) -> Array:
        out = np.add(a, self.gamma, out=out, dtype=z.dtype)  # for z ≤ 0, γ exp(z) = a + γ
        np.copyto(out, 1, where=z > 0)
        return out


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
        out = np.subtract(1, s, out=out, dtype=z.dtype)  # 1 − s
        out *= a                                         # z s (1 − s)
        out *= self.beta                                 # βz s (1 − s)
        out += s
        return out

    def param_gradient(self, z: Array, a: Array, upstream: Array, out: Array) -> Array:
        s = self._sigmoid_of_beta_z(z)
        d_beta = np.subtract(1, s, dtype=z.dtype)
        d_beta *= a   # z s (1 − s)
        d_beta *= z   # z² s (1 − s)
        d_beta *= upstream
        return np.sum(d_beta, axis=0, out=out)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
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
        u = np.multiply(z, z, dtype=z.dtype)
        u *= _GELU_CUBIC
        u += 1
        u *= z
        u *= _SQRT_2_OVER_PI
        result: Array = np.tanh(u, out=u)
        return result

    def forward(self, z: Array, out: Array | None = None) -> Array:
        if self.approximate:
            gate = self._tanh_u(z)
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
        pdf = np.multiply(z, z, dtype=z.dtype)
        pdf *= -0.5
        np.exp(pdf, out=pdf)
        pdf *= _INV_SQRT_2PI
        pdf *= z
        result: Array = np.add(ndtr(z), pdf, out=out, dtype=z.dtype)
        return result

    def _approximate_derivative(self, z: Array, out: Array | None) -> Array:
        """½(1 + t) + ½z(1 − t²)·√(2/π)(1 + 3·0.044715z²), t = tanh u."""
        t = self._tanh_u(z)
        du = np.multiply(z, z, dtype=z.dtype)
        du *= 3 * _GELU_CUBIC * _SQRT_2_OVER_PI
        du += _SQRT_2_OVER_PI
        du *= np.subtract(1, t * t, dtype=z.dtype)
        du *= z
        du += 1 + t
        result: Array = np.multiply(du, 0.5, out=out, dtype=z.dtype)
        return result


class Softmax(Activation):
    """softmax(z)ᵢ = exp(zᵢ − m) / Σⱼ exp(zⱼ − m) per row, m the row maximum (no overflow)."""

    name = "softmax"

    def forward(self, z: Array, out: Array | None = None) -> Array:
        out = np.subtract(z, z.max(axis=1, keepdims=True), out=out, dtype=z.dtype)
        np.exp(out, out=out)
        out /= out.sum(axis=1, keepdims=True, dtype=z.dtype)
        return out

    def derivative(self, z: Array, a: Array, out: Array | None = None) -> Array:
        raise NotImplementedError("softmax is fused with cross_entropy; see engine.losses")


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls
    for cls in (
        Identity, Logistic, Tanh, HardLogistic, HardTanh, ReLU, LeakyReLU, PReLU, Softplus, ELU,
        Swish, GELU, Softmax,
    )
}


def make_activation(spec_obj: Any, units: int, dtype: np.dtype[Any] | str) -> Activation:
    """Build the activation named by a spec object (engine.spec's Activation models) for `units`."""
    name = spec_obj.name
    if name not in ACTIVATIONS:
        raise SpecError(f"unknown activation {name!r}; valid names: {', '.join(ACTIVATIONS)}")
    options = spec_obj.model_dump(exclude={"name"})
    return ACTIVATIONS[name](units, np.dtype(dtype), **options)
