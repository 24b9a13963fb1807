"""Losses: the mean loss over a batch together with its output delta.

Each loss gives `value_and_delta(z, a, y, delta) -> float`: the mean loss over the n rows; it writes
into `delta` the gradient of that mean (rows already carry the 1/n factor):
  - cross-entropy is fused with its output activation and works on the logits z, so `delta` is
    ∂L/∂z⁽ᴸ⁾ directly (`delta_is_for_z = True`);
  - MSE writes ∂L/∂a⁽ᴸ⁾; the network then multiplies by f′(z⁽ᴸ⁾) (`delta_is_for_z = False`).
Targets: class indices (int, shape (n,)) for cross-entropy, values (n, n_targets) for MSE.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from engine.errors import SpecError

__all__ = [
    "LOSSES",
    "Loss",
    "LogisticCrossEntropy",
    "MeanSquaredError",
    "SoftmaxCrossEntropy",
    "make_loss",
]

Array = np.ndarray


class Loss:
    name: ClassVar[str] = ""
    delta_is_for_z: ClassVar[bool] = True

    def value_and_delta(self, z: Array, a: Array, y: Array, delta: Array) -> float:
        raise NotImplementedError

    def value(self, z: Array, a: Array, y: Array) -> float:
        """The mean loss alone (for evaluation; allocates its delta)."""
        return self.value_and_delta(z, a, y, np.empty_like(a))


class SoftmaxCrossEntropy(Loss):
    """L = −log p_y with p = softmax(z);  δ = (p − onehot(y)) / n.

    Stable for any logits: −log p_y = (m − z_y) − log(max_j p_j), m = max_j z_j, because
    max_j p_j = 1 / Σ_j exp(z_j − m) lies in [1/K, 1] and never underflows.
    """

    name = "cross_entropy"

    def __init__(self) -> None:
        self._rows: Array = np.arange(0, dtype=np.int64)

    def _row_index(self, n_samples: int) -> Array:
        if self._rows.shape[0] != n_samples:
            self._rows = np.arange(n_samples, dtype=np.int64)
        return self._rows

    def value_and_delta(self, z: Array, a: Array, y: Array, delta: Array) -> float:
        n_samples = z.shape[0]
        rows = self._row_index(n_samples)
        per_row = z.max(axis=1)
        per_row -= z[rows, y]
        per_row -= np.log(a.max(axis=1))
        np.multiply(a, 1.0 / n_samples, out=delta, dtype=a.dtype)
        delta[rows, y] -= a.dtype.type(1.0 / n_samples)
        return float(per_row.mean(dtype=np.float64))


class LogisticCrossEntropy(Loss):
    """One logistic output p = σ(z) for two classes.

    L = −y log p − (1 − y) log(1 − p) = softplus(z) − y z = max(z, 0) − y z + log1p(exp(−|z|));
    δ = (σ(z) − y) / n.
    """

    name = "cross_entropy"

    def value_and_delta(self, z: Array, a: Array, y: Array, delta: Array) -> float:
        n_samples = z.shape[0]
        target = y.reshape(-1, 1).astype(z.dtype, copy=False)
        per_row = np.logaddexp(z.dtype.type(0), z) - target * z
        np.subtract(a, target, out=delta)
        delta *= a.dtype.type(1.0 / n_samples)
        return float(per_row.mean(dtype=np.float64))


class MeanSquaredError(Loss):
    """L = ½‖ŷ − y‖² per row, averaged over rows;  ∂L/∂ŷ = (ŷ − y) / n (then ⊙ f′(z) upstream)."""

    name = "mse"
    delta_is_for_z = False

    def value_and_delta(self, z: Array, a: Array, y: Array, delta: Array) -> float:
        n_samples = a.shape[0]
        np.subtract(a, y.reshape(a.shape), out=delta, dtype=a.dtype)
        squared_sum = float(np.vdot(delta, delta))
        delta *= a.dtype.type(1.0 / n_samples)
        return 0.5 * squared_sum / n_samples


def make_loss(name: str, output_activation: str, output_units: int) -> Loss:
    """The loss for this output layer; raises SpecError for pairs that are not a valid model."""
    if name == "cross_entropy":
        if output_activation == "softmax":
            return SoftmaxCrossEntropy()
        if output_activation == "logistic" and output_units == 1:
            return LogisticCrossEntropy()
        raise SpecError(
            "cross_entropy needs a softmax output layer, or a logistic output layer with 1 unit; "
            f"got {output_activation!r} with {output_units} unit(s)"
        )
    if name == "mse":
        if output_activation == "softmax":
            raise SpecError("a softmax output needs loss 'cross_entropy'; use identity for mse")
        return MeanSquaredError()
    raise SpecError(f"unknown loss {name!r}; valid names: {', '.join(LOSSES)}")


LOSSES: dict[str, tuple[type[Loss], ...]] = {
    "cross_entropy": (SoftmaxCrossEntropy, LogisticCrossEntropy),
    "mse": (MeanSquaredError,),
}
