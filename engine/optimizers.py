"""First-order optimizers that update parameters in place from their gradients.

Parameters and gradients are lists of dicts of arrays (index l-1 holds layer l), exactly the
`Network.params` / `Network.grads` layout. Each optimizer flattens that layout once, at
construction, into a fixed order and keeps one scratch buffer per array, so a step allocates
nothing and every array keeps its dtype (Python-float step sizes never promote float32).

The gradient g already holds ∂R/∂θ = ∂L/∂θ + λθ for weights (the network adds λW), so plain SGD
is exactly Algorithm 4.1 of the lecture: W ← W − α(∂L/∂W + λW).

    SGD        θ ← θ − α g
    Momentum   v ← μ v − α g;            θ ← θ + v
    Nesterov   v ← μ v − α g;            θ ← θ + μ v − α g      (Bengio et al. 2013 form)
    AdaGrad    G ← G + g²;               θ ← θ − α g / (√G + ε)
    RMSprop    G ← ρ G + (1 − ρ) g²;     θ ← θ − α g / (√G + ε)
    Adam       m ← β₁ m + (1 − β₁) g;  s ← β₂ s + (1 − β₂) g²;  t ← t + 1
               θ ← θ − α m̂ / (√ŝ + ε),  m̂ = m / (1 − β₁ᵗ),  ŝ = s / (1 − β₂ᵗ)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.errors import SerializationError
from engine.spec import (
    AdaGradSpec,
    AdamSpec,
    MomentumSpec,
    NesterovSpec,
    OptimizerSpec,
    RMSpropSpec,
    SGDSpec,
)

__all__ = [
    "SGD",
    "AdaGrad",
    "Adam",
    "Momentum",
    "Nesterov",
    "Optimizer",
    "RMSprop",
    "flatten_arrays",
    "make_optimizer",
]

ParamList = Sequence[dict[str, np.ndarray]]


def flatten_arrays(layers: ParamList) -> list[np.ndarray]:
    """The arrays of a params/grads list in a fixed order: layer by layer, keys sorted."""
    return [layer[key] for layer in layers for key in sorted(layer)]


def _array_names(layers: ParamList) -> list[str]:
    """Stable names matching `flatten_arrays`: "W1", "b1", "gamma2", … (layer numbered from 1)."""
    return [f"{key}{index}" for index, layer in enumerate(layers, start=1) for key in sorted(layer)]


class Optimizer:
    """Base class: holds per-array state buffers named `<slot>.<array name>` for checkpoints."""

    name = "optimizer"
    slots: tuple[str, ...] = ()
    fuses_into_backprop = False  # True: `descend` runs a whole step inside backpropagation

    def __init__(self, params: ParamList) -> None:
        self._names = _array_names(params)
        # zeros_like keeps each parameter's memory layout, so updates walk both arrays in order.
        self._scratch = [np.zeros_like(p) for p in flatten_arrays(params)]
        self._state = {
            slot: [np.zeros_like(p) for p in flatten_arrays(params)] for slot in self.slots
        }
        self.t = 0  # steps taken so far (Adam's bias correction needs it; kept for all)
        self._bound: tuple[ParamList, ParamList, list[tuple[int, np.ndarray, np.ndarray]]] | None
        self._bound = None

    def _pairs(
        self, params: ParamList, grads: ParamList
    ) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """(index, θ, g) triples, flattened once per params/grads pair (the per-step cost is
        then a few ufunc calls per array, which matters for small networks)."""
        bound = self._bound
        if bound is None or bound[0] is not params or bound[1] is not grads:
            flat = zip(flatten_arrays(params), flatten_arrays(grads), strict=True)
            bound = (params, grads, [(i, theta, g) for i, (theta, g) in enumerate(flat)])
            self._bound = bound
        return bound[2]

    def step(self, params: ParamList, grads: ParamList, learning_rate: float) -> None:
        """Update every parameter array in place from its gradient."""
        self.t += 1
        lr = float(learning_rate)
        for i, theta, g in self._pairs(params, grads):
            self._update(i, theta, g, lr)

    def descend(self, network: Any, X: np.ndarray, y: np.ndarray, learning_rate: float,
                l2: float) -> float:
        raise NotImplementedError(f"{self.name} needs the plain gradient and its learning rate")

    def _update(self, i: int, theta: np.ndarray, g: np.ndarray, lr: float) -> None:
        raise NotImplementedError

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Copies of the optimizer state, named for an npz; the step count as a 0-d int64 array."""
        arrays = {
            f"{slot}.{name}": buf.copy()
            for slot, bufs in self._state.items()
            for name, buf in zip(self._names, bufs, strict=True)
        }
        arrays["t"] = np.array(self.t, dtype=np.int64)
        return arrays

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore state saved by `state_arrays` (same network shape); casts nothing silently."""
        expected = {f"{slot}.{name}" for slot in self._state for name in self._names} | {"t"}
        if set(arrays) != expected:
            raise SerializationError(
                f"optimizer state for {self.name!r} has arrays {sorted(arrays)}; "
                f"expected {sorted(expected)}"
            )
        for slot, bufs in self._state.items():
            for name, buf in zip(self._names, bufs, strict=True):
                _copy_checked(buf, arrays[f"{slot}.{name}"], f"{slot}.{name}")
        self.t = int(arrays["t"])


def _copy_checked(target: np.ndarray, source: np.ndarray, label: str) -> None:
    if source.shape != target.shape or source.dtype != target.dtype:
        raise SerializationError(
            f"optimizer state {label!r} is {source.dtype}{list(source.shape)}; "
            f"expected {target.dtype}{list(target.shape)}"
        )
    np.copyto(target, source)


class SGD(Optimizer):
    """θ ← θ − α g (Algorithm 4.1; λW is already part of g)."""

    name = "sgd"
    fuses_into_backprop = True

    def descend(self, network: Any, X: np.ndarray, y: np.ndarray, learning_rate: float,
                l2: float) -> float:
        """This step on a batch, fused into backpropagation (`Network.descend`): the mean loss.

        The same update as `loss_and_gradients` + `step` up to rounding, without writing or
        re-reading a gradient of W (MNIST batch 32, 2 threads: 388 → 337 µs per step). Training
        takes this path for every batch but the diagnosed ones, which need the true gradients.
        """
        loss = float(network.descend(X, y, learning_rate=learning_rate, l2=l2))
        if math.isfinite(loss):  # as the two-pass path, which steps only after a finite loss
            self.t += 1
        return loss

    def _update(self, i: int, theta: np.ndarray, g: np.ndarray, lr: float) -> None:
        np.subtract(theta, np.multiply(g, lr, out=self._scratch[i]), out=theta)


class Momentum(Optimizer):
    """v ← μ v − α g; θ ← θ + v."""

    name = "momentum"
    slots = ("velocity",)

    def __init__(self, params: ParamList, momentum: float) -> None:
        super().__init__(params)
        self.momentum = float(momentum)

    def _update(self, i: int, theta: np.ndarray, g: np.ndarray, lr: float) -> None:
        v = self._state["velocity"][i]
        v *= self.momentum
        v -= np.multiply(g, lr, out=self._scratch[i])
        theta += v


class Nesterov(Momentum):
    """v ← μ v − α g; θ ← θ + μ v − α g: the look-ahead step written at the current point."""

    name = "nesterov"

    def _update(self, i: int, theta: np.ndarray, g: np.ndarray, lr: float) -> None:
        v, scratch = self._state["velocity"][i], self._scratch[i]
        v *= self.momentum
        v -= np.multiply(g, lr, out=scratch)
        theta -= scratch
        theta += np.multiply(v, self.momentum, out=scratch)


class AdaGrad(Optimizer):
    """G ← G + g²; θ ← θ − α g / (√G + ε)."""

    name = "adagrad"
    slots = ("sum_squares",)

    def __init__(self, params: ParamList, eps: float) -> None:
        super().__init__(params)
        self.eps = float(eps)

    def _accumulate(self, i: int, g: np.ndarray) -> np.ndarray:
        total = self._state["sum_squares"][i]
        total += np.multiply(g, g, out=self._scratch[i])
        return total

    def _update(self, i: int, theta: np.ndarray, g: np.ndarray, lr: float) -> None:
        total = self._accumulate(i, g)
        scratch = np.sqrt(total, out=self._scratch[i])
        scratch += self.eps
        np.divide(g, scratch, out=scratch)
        scratch *= lr
        theta -= scratch


class RMSprop(AdaGrad):
    """G ← ρ G + (1 − ρ) g²; θ ← θ − α g / (√G + ε)."""

    name = "rmsprop"

    def __init__(self, params: ParamList, rho: float, eps: float) -> None:
        super().__init__(params, eps)
        self.rho = float(rho)

    def _accumulate(self, i: int, g: np.ndarray) -> np.ndarray:
        average, scratch = self._state["sum_squares"][i], self._scratch[i]
        average *= self.rho
        np.multiply(g, g, out=scratch)
        scratch *= 1.0 - self.rho
        average += scratch
        return average


class Adam(Optimizer):
    """Adam with bias correction, computed as θ ← θ − (α/(1−β₁ᵗ)) m / (√s/√(1−β₂ᵗ) + ε)."""

    name = "adam"
    slots = ("m", "s")

    def __init__(self, params: ParamList, beta1: float, beta2: float, eps: float) -> None:
        super().__init__(params)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def _update(self, i: int, theta: np.ndarray, g: np.ndarray, lr: float) -> None:
        m, s, scratch = self._state["m"][i], self._state["s"][i], self._scratch[i]
        m *= self.beta1
        m += np.multiply(g, 1.0 - self.beta1, out=scratch)
        s *= self.beta2
        np.multiply(g, g, out=scratch)
        scratch *= 1.0 - self.beta2
        s += scratch
        np.sqrt(s, out=scratch)
        scratch *= 1.0 / math.sqrt(1.0 - self.beta2**self.t)
        scratch += self.eps
        np.divide(m, scratch, out=scratch)
        scratch *= lr / (1.0 - self.beta1**self.t)
        theta -= scratch


def make_optimizer(spec: OptimizerSpec, params: ParamList) -> Optimizer:
    """The optimizer a spec names, bound to the shapes and dtypes of `params`.

    `{"name": "sgd", "momentum": μ > 0}` is momentum, and with `"nesterov": true` Nesterov.
    """
    if isinstance(spec, SGDSpec):
        if spec.momentum > 0.0:
            kind = Nesterov if spec.nesterov else Momentum
            return kind(params, spec.momentum)
        return SGD(params)
    if isinstance(spec, NesterovSpec):
        return Nesterov(params, spec.momentum)
    if isinstance(spec, MomentumSpec):
        return Momentum(params, spec.momentum)
    if isinstance(spec, AdaGradSpec):
        return AdaGrad(params, spec.eps)
    if isinstance(spec, RMSpropSpec):
        return RMSprop(params, spec.rho, spec.eps)
    if isinstance(spec, AdamSpec):
        return Adam(params, spec.beta1, spec.beta2, spec.eps)
    raise TypeError(f"not an optimizer spec: {type(spec).__name__}")
