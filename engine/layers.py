"""Layer math, batch-first: z = a_prev Wᵀ + b for a batch a_prev of shape (n_samples, fan_in).

W keeps the lecture's orientation (M_l, M_{l−1}) as an array, but a Dense layer stores it as its
transpose (fan_in, units): `np.matmul(a_prev, W.T, out=z)` is then a plain GEMM and ∂L/∂W (also
stored transposed) is aᵀδ, which OpenBLAS runs ~30 % faster than the (units, fan_in) layout for
the first layer of an MNIST network (bench/results/NOTES.md); δ·W, the one product this layout
slows, is never computed for layer 1. Transposes reach BLAS as flags, so nothing is copied.
Each layer computes into buffers preallocated for one batch size (`allocate(n)` once,
`bind(buffers)` on each switch) and fills its gradients in place.

Per batch, with δ = ∂L/∂z⁽ˡ⁾ (rows already carry the 1/n of the mean loss):
    ∂L/∂W = δᵀ a_prev    ∂L/∂b = Σ_rows δ    ∂L/∂a_prev = δ W
`backward` fills the gradients; `descend` (plain SGD, δ already scaled by α) applies them instead,
the W update inside the GEMM (engine/blas.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.activation_base import Activation
from engine.activations import Identity
from engine.blas import subtract_product

__all__ = ["Dense", "Layer", "Maxout", "squared_norm"]

Array = np.ndarray


class Dense:
    """A fully connected layer a = f(W a_prev + b); W is (units, fan_in), b is (units,)."""

    def __init__(self, units: int, fan_in: int, activation: Activation, dtype: Any) -> None:
        self.units, self.fan_in, self.dtype = units, fan_in, np.dtype(dtype)
        self.activation = activation
        self.W = np.zeros((fan_in, units), dtype=self.dtype).T  # (units, fan_in), see above
        self.b = np.zeros(units, dtype=self.dtype)
        self.params: dict[str, Array] = {"W": self.W, "b": self.b, **activation.params}
        self.grads: dict[str, Array] = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._param = self.params.get(activation.param_name or "")  # PReLU γ, learnable swish β
        self._dparam = self.grads.get(activation.param_name or "")
        self.bind(self.allocate(0))

    def allocate(self, n_samples: int) -> tuple[Array, ...]:
        """Buffers for one batch size: z, a (z itself for identity), delta, scratch, ones."""
        z = np.empty((n_samples, self.units), dtype=self.dtype)
        a = z if isinstance(self.activation, Identity) else np.empty_like(z)
        ones = np.ones(n_samples, dtype=self.dtype)
        return z, a, np.empty_like(z), np.empty_like(z), ones

    def bind(self, buffers: tuple[Array, ...]) -> None:
        self.z, self.a, self.delta, self._scratch, self._ones = buffers

    def forward(self, a_prev: Array) -> Array:
        """z = a_prev Wᵀ + b and a = f(z), into the bound buffers; returns a."""
        self.linear(a_prev)
        self.activation.forward_train(self.z, self.a, self._scratch)
        return self.a

    def linear(self, a_prev: Array) -> None:
        """z = a_prev Wᵀ + b only (a fused loss applies the output activation itself)."""
        np.matmul(a_prev, self.W.T, out=self.z)
        self.z += self.b

    def activate(self) -> None:
        self.activation.forward_train(self.z, self.a, self._scratch)

    def backprop_activation(self) -> None:
        """delta: ∂L/∂a on entry, ∂L/∂z = ∂L/∂a ⊙ f′(z) on exit; also fills ∂L/∂γ or ∂L/∂β."""
        if self._dparam is not None:
            self.activation.param_gradient(self.z, self.a, self.delta, out=self._dparam)
        self.activation.backprop(self.z, self.a, self.delta, self._scratch)

    def backward(self, a_prev: Array, upstream_out: Array | None) -> None:
        """With delta = ∂L/∂z: fill ∂L/∂W, ∂L/∂b and, if asked, ∂L/∂a_prev into upstream_out."""
        delta = self.delta
        np.matmul(delta.T, a_prev, out=self.grads["W"])
        # Σ_rows δ as a GEMV: 2–3× np.sum's speed at these shapes
        np.matmul(self._ones, delta, out=self.grads["b"])
        if upstream_out is not None:
            np.matmul(delta, self.W, out=upstream_out)

    def descend(self, a_prev: Array, upstream_out: Array | None, keep: float) -> None:
        """Plain SGD fused into `backward`, with delta = α·∂L/∂z: ∂L/∂a_prev into upstream_out
        (from W before the step), then W ← keep·W − a_prevᵀδ inside the GEMM (keep = 1 − αλ),
        b ← b − Σ_rows δ, and γ or β less its gradient (already α-scaled by backprop)."""
        delta = self.delta
        if upstream_out is not None:
            np.matmul(delta, self.W, out=upstream_out)
        subtract_product(self.W.T, a_prev, delta, keep=keep, scratch=self.grads["W"].T)
        np.matmul(self._ones, delta, out=self.grads["b"])
        self.b -= self.grads["b"]
        if self._param is not None and self._dparam is not None:
            self._param -= self._dparam


class Maxout:
    """a_i = max_k z_ik, z_ik = w_ik · a_prev + b_ik; W is (units, pieces, fan_in), b (units, K).

    The gradient of a_i flows only to its winning piece (ties go to the first); for the winner k*:
    ∂L/∂w_ik* = Σ_rows ∂L/∂a_i · a_prev and every other piece gets 0 from that row. Here `z` is the
    winning piece's value (equal to `a`) and `delta` is ∂L/∂a; the pieces live in private buffers.
    """

    def __init__(self, units: int, pieces: int, fan_in: int, dtype: Any) -> None:
        self.units, self.pieces, self.fan_in, self.dtype = units, pieces, fan_in, np.dtype(dtype)
        self.W = np.zeros((units, pieces, fan_in), dtype=self.dtype)
        self.b = np.zeros((units, pieces), dtype=self.dtype)
        self.params: dict[str, Array] = {"W": self.W, "b": self.b}
        self.grads: dict[str, Array] = {k: np.zeros_like(v) for k, v in self.params.items()}
        # Flat views: all pieces of all units form one (units·pieces, fan_in) GEMM.
        self._W_flat = self.W.reshape(units * pieces, fan_in)
        self._b_flat = self.b.reshape(units * pieces)
        self._dW_flat = self.grads["W"].reshape(units * pieces, fan_in)
        self._db_flat = self.grads["b"].reshape(units * pieces)
        self.bind(self.allocate(0))

    def allocate(self, n_samples: int) -> tuple[Array, ...]:
        """Buffers: a (= z), delta, piece values, piece deltas, winner index."""
        a = np.empty((n_samples, self.units), dtype=self.dtype)
        piece_values = np.empty((n_samples, self.units * self.pieces), dtype=self.dtype)
        winner = np.empty((n_samples, self.units), dtype=np.intp)
        return a, np.empty_like(a), piece_values, np.empty_like(piece_values), winner

    def bind(self, buffers: tuple[Array, ...]) -> None:
        self.a, self.delta, self._piece_values, self._piece_delta, self._winner = buffers
        self.z = self.a

    def forward(self, a_prev: Array) -> Array:
        self.linear(a_prev)
        return self.a

    def linear(self, a_prev: Array) -> None:
        """Every piece z_ik, and the winner's value as this layer's output."""
        values = self._piece_values
        np.matmul(a_prev, self._W_flat.T, out=values)
        values += self._b_flat
        by_unit = values.reshape(values.shape[0], self.units, self.pieces)
        np.argmax(by_unit, axis=2, out=self._winner)
        np.max(by_unit, axis=2, out=self.a)

    def activate(self) -> None:
        """The max in `linear` already is the activation."""

    def backprop_activation(self) -> None:
        """The output is the winning piece itself: ∂a/∂z_winner = 1, nothing to multiply."""

    def backward(self, a_prev: Array, upstream_out: Array | None) -> None:
        piece_delta = self._route_delta()
        np.matmul(piece_delta.T, a_prev, out=self._dW_flat)
        np.sum(piece_delta, axis=0, out=self._db_flat)
        if upstream_out is not None:
            np.matmul(piece_delta, self._W_flat, out=upstream_out)

    def descend(self, a_prev: Array, upstream_out: Array | None, keep: float) -> None:
        """Plain SGD fused into `backward` (see Dense.descend): W ← keep·W − δ_piecesᵀ a_prev."""
        piece_delta = self._route_delta()
        if upstream_out is not None:
            np.matmul(piece_delta, self._W_flat, out=upstream_out)
        subtract_product(self._W_flat, piece_delta, a_prev, keep=keep, scratch=self._dW_flat)
        np.sum(piece_delta, axis=0, out=self._db_flat)
        self._b_flat -= self._db_flat

    def _route_delta(self) -> Array:
        """∂L/∂z of every piece: the unit's δ at its winning piece, 0 at the others."""
        piece_delta = self._piece_delta
        piece_delta.fill(0)
        by_unit = piece_delta.reshape(piece_delta.shape[0], self.units, self.pieces)
        np.put_along_axis(by_unit, self._winner[..., None], self.delta[..., None], axis=2)
        return piece_delta


Layer = Dense | Maxout


def squared_norm(array: Array) -> float:
    """Σ x² (‖array‖²_F) as a Python float, through one BLAS dot product on a view of the array.

    np.vdot flattens in C order, which copies a Dense W (stored transposed); ravel(order="K") is a
    view for any contiguous layout. float32 arrays accumulate in float32 (BLAS sdot).
    """
    flat = array.ravel(order="K")
    return float(np.vdot(flat, flat))
