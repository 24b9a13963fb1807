"""Activation functions of the lecture, each with its exact derivative, and their registry.

The interface (forward, derivative, forward_train/backprop in place, learned parameters) is in
engine.activation_base. Sigmoid-type functions, identity and softmax live here; the ReLU family in
engine.relu_family; swish and GELU in engine.gated_activations. `ACTIVATIONS` maps the names of
engine.spec.ACTIVATION_NAMES to classes. Softmax is only an output: its derivative is fused with
cross-entropy in engine.losses.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit

from engine.activation_base import Activation, Array, deliver, separate_out
from engine.errors import SpecError
from engine.gated_activations import GELU, Swish
from engine.relu_family import ELU, LeakyReLU, PReLU, ReLU, Softplus

__all__ = ["ACTIVATIONS", "Activation", "make_activation"]


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
        slope = np.subtract(1, a, out=separate_out(out, a), dtype=a.dtype)
        np.multiply(slope, a, out=slope)
        return deliver(slope, out)


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
        inside = (z > -2) & (z < 2)  # from z: 0.25z + 0.5 rounds to 1 just below z = 2
        return np.multiply(inside, 0.25, out=out, dtype=z.dtype)


class HardTanh(Activation):
    """f(z) = max(min(z, 1), −1), f′(z) = I(−1 < z < 1)."""

    name = "hard_tanh"

    def forward(self, z: Array, out: Array | None = None) -> Array:
        return np.clip(z, -1, 1, out=out)

    def derivative(self, z: Array, a: Array, out: Array | None = None) -> Array:
        inside = (a > -1) & (a < 1)
        return np.multiply(inside, 1, out=out, dtype=a.dtype)


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
