"""Losses: the mean loss over a batch together with its output delta.

Each loss gives `value_and_delta(z, a, y, delta) -> float`: the mean loss over the n rows; it writes
into `delta` the gradient of that mean (rows already carry the 1/n factor):
  - cross-entropy is fused with its output activation (`fused = True`): it reads the logits z,
    writes the probabilities into `a` and ∂L/∂z⁽ᴸ⁾ into `delta`;
  - MSE reads the output a⁽ᴸ⁾ and writes ∂L/∂a⁽ᴸ⁾; the network then multiplies by f′(z⁽ᴸ⁾).
Targets: class indices (int, shape (n,)) for cross-entropy, values (n, n_targets) for MSE.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy.special import expit

from engine.errors import DataError, SpecError

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
    """Base class. `fused` losses read the logits z and write the output activation into `a`."""

    name: ClassVar[str] = ""
    fused: ClassVar[bool] = True

    def value_and_delta(self, z: Array, a: Array, y: Array, delta: Array) -> float:
        raise NotImplementedError


class SoftmaxCrossEntropy(Loss):
    """p = softmax(z) per row, L = −log p_y;  δ = ∂L/∂z = (p − onehot(y)) / n.

    Stable for any logits with m = max_j z_j and s = Σ_j exp(z_j − m) ∈ [1, K]:
    p = exp(z − m) / s and −log p_y = log s − (z_y − m), so nothing overflows or takes log 0.
    """

    name = "cross_entropy"

    def __init__(self) -> None:  # `a` and `delta` must be C-contiguous (network buffers are)
        self._n_samples = -1
        self._ones: Array = np.ones((0, 1), dtype=np.float64)

    def _row_buffers(self, n_samples: int, n_classes: int, dtype: np.dtype[Any]) -> None:
        """Per-row work arrays, reallocated only when the batch shape changes."""
        if n_samples != self._n_samples or self._ones.shape[0] != n_classes:
            # Row i's target sits at flat index i·K + y_i of a C-ordered (n, K) array.
            self._row_offsets = np.arange(0, n_samples * n_classes, n_classes, dtype=np.intp)
            self._target_index = np.empty(n_samples, dtype=np.intp)
            self._row_max = np.empty((n_samples, 1), dtype=dtype)
            self._row_sum = np.empty((n_samples, 1), dtype=dtype)
            self._ones = np.ones((n_classes, 1), dtype=dtype)
            self._n_samples = n_samples

    def value_and_delta(self, z: Array, a: Array, y: Array, delta: Array) -> float:
        n_samples, n_classes = z.shape
        self._row_buffers(n_samples, n_classes, z.dtype)
        row_max, row_sum, target = self._row_max, self._row_sum, self._target_index
        if n_samples and (y.min() < 0 or y.max() >= n_classes):  # else flat indices go astray
            raise DataError(f"class indices must lie in 0..{n_classes - 1}")
        np.add(self._row_offsets, y, out=target)
        np.maximum.reduce(z, axis=1, keepdims=True, out=row_max)
        np.subtract(z, row_max, out=a)
        shifted_target_sum = float(a.reshape(-1).take(target).sum())  # Σ_rows (z_y − m)
        np.exp(a, out=a)
        np.matmul(a, self._ones, out=row_sum)  # Σ_j as a GEMV: faster than sum over a short axis
        a /= row_sum
        log_sum_total = float(np.log(row_sum, out=row_sum).sum())
        scale = a.dtype.type(1.0 / n_samples)
        np.multiply(a, scale, out=delta)
        delta.reshape(-1)[target] -= scale
        return (log_sum_total - shifted_target_sum) / int(n_samples)


class LogisticCrossEntropy(Loss):
    """One logistic output p = σ(z) for two classes.

    L = −y log p − (1 − y) log(1 − p) = softplus(z) − y z (stable as logaddexp(0, z) − y z);
    δ = ∂L/∂z = (σ(z) − y) / n.
    """

    name = "cross_entropy"

    def value_and_delta(self, z: Array, a: Array, y: Array, delta: Array) -> float:
        n_samples = z.shape[0]
        target = y.reshape(-1, 1).astype(z.dtype, copy=False)
        expit(z, out=a)
        per_row = np.logaddexp(z.dtype.type(0), z) - target * z
        np.subtract(a, target, out=delta)
        delta *= a.dtype.type(1.0 / n_samples)
        return float(per_row.mean(dtype=np.float64))


class MeanSquaredError(Loss):
    """L = ½‖ŷ − y‖² per row, averaged over rows;  ∂L/∂ŷ = (ŷ − y) / n (then ⊙ f′(z) upstream)."""

    name = "mse"
    fused = False

    def value_and_delta(self, z: Array, a: Array, y: Array, delta: Array) -> float:
        n_samples = int(a.shape[0])
        np.subtract(a, y.reshape(a.shape), out=delta, dtype=a.dtype)
        residual = delta.astype(np.float64, copy=False)  # float32 sums of squares overflow
        squared_sum = float(np.vdot(residual, residual))
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
