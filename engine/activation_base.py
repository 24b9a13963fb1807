"""The interface every activation implements (see engine.activations for the registry).

Each class works element-wise on a batch `z` of shape (n_samples, units), keeping its dtype:
    forward(z, out)          a = f(z)
    derivative(z, a, out)    f′(z); `a` is the cached output, used where it is cheaper than z
    forward_train(z, a, scratch)        a = f(z) in a training step; may keep f′(z) in `scratch`
    backprop(z, a, upstream, scratch)   upstream ← upstream ⊙ f′(z), in place, after forward_train
                                        on the same buffers (the training hot path)
PReLU and learnable swish also own one learned parameter per unit (`param`, shape (units,)) and give
    param_gradient(z, a, upstream, out)  ∂L/∂param = Σ_rows upstream ⊙ ∂a/∂param.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

__all__ = ["Activation", "Array", "deliver", "separate_out"]

Array = np.ndarray


def separate_out(out: Array | None, *inputs: Array) -> Array | None:
    """`out`, unless writing to it would clobber an input that is still to be read (callers may
    pass out=z or out=a): then None, and the caller computes into a new array and `deliver`s."""
    if out is None or any(np.may_share_memory(out, array) for array in inputs):
        return None
    return out


def deliver(result: Array, out: Array | None) -> Array:
    """`result` in `out` when one was asked for (copied if it was computed elsewhere)."""
    if out is None or result is out:
        return result
    np.copyto(out, result)
    return out


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

    def param_gradient(
        self, z: Array, a: Array, upstream: Array, out: Array | None = None
    ) -> Array:
        raise NotImplementedError(f"{self.name} has no learned parameter")

    @property
    def params(self) -> dict[str, Array]:
        """The learned parameter under its public name, or nothing."""
        if self.param_name is None or self.param is None:
            return {}
        return {self.param_name: self.param}
