"""The bar the engine issue names: a careful hand-written NumPy MLP, timed like our engine.

What a NumPy programmer who cares about speed writes for 784-256-128-10 ReLU + softmax cross-entropy
with plain SGD: float32 throughout, weights stored (fan_in, fan_out) so the forward product needs
no transpose, every buffer preallocated, rows gathered into a reused batch buffer from a reshuffled
index array, activations and gradients in place, ReLU's mask kept from the forward pass, the loss of
every batch computed stably. No diagnostics, no metrics, no callbacks, no checks: our train() does
all of those on top of the same arithmetic, so `ours ÷ this` shows what the engine itself costs.
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray


class HandWrittenMLP:
    """Dense ReLU layers and a softmax output; `epoch` runs one shuffled pass of plain SGD."""

    def __init__(self, widths: tuple[int, ...], batch_size: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.W = [(rng.standard_normal((fan_in, fan_out), dtype=np.float32)
                   * np.float32(np.sqrt(2.0 / fan_in)))  # He normal
                  for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True)]
        self.b = [np.zeros(fan_out, dtype=np.float32) for fan_out in widths[1:]]
        self.batch_size = batch_size
        self._x = np.empty((batch_size, widths[0]), dtype=np.float32)
        self._y = np.empty(batch_size, dtype=np.int64)
        self._a = [np.empty((batch_size, width), dtype=np.float32) for width in widths[1:]]
        self._mask = [np.empty_like(a) for a in self._a[:-1]]
        self._up = [np.empty((batch_size, width), dtype=np.float32) for width in widths[1:-1]]
        self._dW = [np.empty_like(W) for W in self.W]
        self._db = [np.empty_like(b) for b in self.b]
        self._row_max = np.empty((batch_size, 1), dtype=np.float32)
        self._row_sum = np.empty((batch_size, 1), dtype=np.float32)
        self._rows = np.arange(batch_size)

    def epoch(self, X: Array, y: Array, order: Array, learning_rate: float) -> float:
        """One pass over X in the batches of `order` (full batches only); the mean batch loss."""
        total, n_batches = 0.0, 0
        for start in range(0, order.shape[0] - self.batch_size + 1, self.batch_size):
            idx = order[start : start + self.batch_size]
            X.take(idx, axis=0, out=self._x, mode="clip")
            y.take(idx, out=self._y, mode="clip")
            total += self._step(learning_rate)
            n_batches += 1
        return total / max(n_batches, 1)

    def predict(self, X: Array) -> Array:
        a = X
        for index, (W, b) in enumerate(zip(self.W, self.b, strict=True)):
            a = a @ W + b
            if index < len(self.W) - 1:
                np.maximum(a, 0, out=a)
        return a.argmax(axis=1)

    def _step(self, learning_rate: float) -> float:
        n, last = self.batch_size, len(self.W) - 1
        a_prev = self._x
        for index in range(last + 1):
            z = self._a[index]
            np.matmul(a_prev, self.W[index], out=z)
            z += self.b[index]
            if index < last:
                np.greater(z, 0, out=self._mask[index])
                z *= self._mask[index]  # a = max(z, 0), in place
            a_prev = z
        p = self._a[last]  # logits → probabilities, then δ = (p − onehot(y)) / n, all in place
        np.maximum.reduce(p, axis=1, keepdims=True, out=self._row_max)
        p -= self._row_max
        shifted_target = p[self._rows, self._y]
        np.exp(p, out=p)
        np.sum(p, axis=1, keepdims=True, out=self._row_sum)
        p /= self._row_sum
        loss = float(np.mean(np.log(self._row_sum[:, 0]) - shifted_target))
        p[self._rows, self._y] -= 1.0
        p *= np.float32(1.0 / n)
        delta = p
        for index in range(last, -1, -1):
            a_prev = self._x if index == 0 else self._a[index - 1]
            np.matmul(a_prev.T, delta, out=self._dW[index])
            np.sum(delta, axis=0, out=self._db[index])
            if index > 0:
                upstream = self._up[index - 1]
                np.matmul(delta, self.W[index].T, out=upstream)
                upstream *= self._mask[index - 1]
            step = np.float32(learning_rate)
            self._dW[index] *= step
            self.W[index] -= self._dW[index]
            self._db[index] *= step
            self.b[index] -= self._db[index]
            if index > 0:
                delta = upstream
        return loss

