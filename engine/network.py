"""A feedforward network: layers composed, with forward pass and backpropagation on a batch.

Forward, l = 1 … L:  z⁽ˡ⁾ = a⁽ˡ⁻¹⁾ W⁽ˡ⁾ᵀ + b⁽ˡ⁾,  a⁽ˡ⁾ = f_l(z⁽ˡ⁾)   (rows are samples, a⁽⁰⁾ = X)
Backward (eq. BP):   δ⁽ˡ⁾ = f_l′(z⁽ˡ⁾) ⊙ (δ⁽ˡ⁺¹⁾ W⁽ˡ⁺¹⁾),
                     ∂R/∂W⁽ˡ⁾ = δ⁽ˡ⁾ᵀ a⁽ˡ⁻¹⁾ + λW⁽ˡ⁾,  ∂R/∂b⁽ˡ⁾ = Σ_rows δ⁽ˡ⁾,
with δ⁽ᴸ⁾ from the loss (engine.losses).

Speed: buffers are allocated once per batch size and reused, every step writes in place, arrays keep
the network's dtype, and the input gradient of layer 1 is never computed (nothing needs it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.activations import make_activation
from engine.errors import DataError, SpecError
from engine.initializers import initialize_weights, resolve_initializer
from engine.layers import Dense, Layer, Maxout, squared_norm
from engine.losses import Loss, make_loss
from engine.spec import MaxoutLayer, NetworkSpec, layer_shapes

__all__ = ["EVALUATION_CHUNK_ROWS", "Network"]

Array = np.ndarray

EVALUATION_CHUNK_ROWS = 2048  # forward-only passes run in chunks so buffers stay a few MB
_MAX_CACHED_BATCH_SIZES = 4  # e.g. training batch, last partial batch, evaluation chunks


class Network:
    """Parameters, gradients and per-batch caches of a network built from a NetworkSpec.

    `params[l-1]` / `grads[l-1]` hold layer l's arrays ("W", "b", and "gamma"/"beta" for PReLU or
    learnable swish); optimizers update `params` in place. After `loss_and_gradients`, `z[l-1]`,
    `a[l-1]` and `delta[l-1]` are that batch's z⁽ˡ⁾, a⁽ˡ⁾ and ∂L/∂z⁽ˡ⁾ (buffers that the next call
    reuses).
    """

    def __init__(
        self, spec: NetworkSpec, n_inputs: int, layers: list[Layer], loss: str, dtype: Any
    ) -> None:
        self.spec, self.n_inputs, self.layers = spec, n_inputs, layers
        self.dtype = np.dtype(dtype)
        self.loss = loss
        self._loss: Loss = make_loss(loss, spec.output.activation.name, spec.output.units)
        self.params: list[dict[str, Array]] = [layer.params for layer in layers]
        self.grads: list[dict[str, Array]] = [layer.grads for layer in layers]
        self._buffers: dict[int, list[tuple[Array, ...]]] = {}
        self._bound_rows = -1
        # (layer, the layer below it) from the top down, for the backward loop.
        self._backward_pairs = [(layers[i], layers[i - 1]) for i in range(len(layers) - 1, 0, -1)]
        self._hidden, self._top = layers[:-1], layers[-1]
        self._l2_scratch: list[Array] | None = None

    @classmethod
    def from_spec(
        cls,
        spec: NetworkSpec,
        n_inputs: int,
        *,
        loss: str,
        dtype: Any = "float32",
        rng: np.random.Generator,
    ) -> Network:
        """Build and initialise a network for n_inputs features (weights by `spec.init`, b = 0)."""
        if n_inputs < 1:
            raise SpecError("a network needs at least one input feature")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise SpecError(f"dtype must be float32 or float64, not {dtype}")
        layers = _build_layers(spec, n_inputs, dtype)
        for layer_spec, layer in zip(spec.layers, layers, strict=True):
            _initialize(layer_spec, layer, spec.init, rng)
        return cls(spec, n_inputs, layers, loss, dtype)

    # --- per-batch computation ---------------------------------------------------------------

    def loss_and_gradients(self, X: Array, y: Array, *, l2: float = 0.0) -> float:
        """Fill `grads` with ∂R/∂θ of R = mean loss + ½λΣ‖W‖²; return the mean loss alone."""
        X = self._check_input(X)
        self._bind(X.shape[0])
        value = self._forward_with_loss(X, y)
        if not self._loss.fused:
            self._top.backprop_activation()
        for layer, below in self._backward_pairs:
            layer.backward(below.a, below.delta)
            below.backprop_activation()
        self.layers[0].backward(X, None)
        if l2:
            self._add_weight_decay(l2)
        return value

    def descend(self, X: Array, y: Array, *, learning_rate: float, l2: float = 0.0) -> float:
        """One plain-SGD step θ ← θ − α·∂R/∂θ on this batch, fused into backpropagation; returns
        the mean loss (without the penalty), as `loss_and_gradients` would.

        Every gradient is linear in the output delta, so α is folded into it once; each layer
        then passes its δ down and updates itself at once (W ← (1 − αλ)·W − a_prevᵀ·αδ in one
        GEMM), so no ∂L/∂W array is written and no second pass reads one. `grads` are not filled.
        """
        X = self._check_input(X)
        self._bind(X.shape[0])
        value = self._forward_with_loss(X, y)
        self._top.delta *= self.dtype.type(learning_rate)
        if not self._loss.fused:
            self._top.backprop_activation()
        keep = 1.0 - float(learning_rate) * float(l2)
        for layer, below in self._backward_pairs:
            layer.descend(below.a, below.delta, keep)
            below.backprop_activation()
        self.layers[0].descend(X, None, keep)
        return value

    def forward(self, X: Array) -> Array:
        """a⁽ᴸ⁾ for every row of X (a new array): probabilities, or values for regression."""
        X = self._check_input(X)
        output = np.empty((X.shape[0], self.layers[-1].units), dtype=self.dtype)
        for start in range(0, X.shape[0], EVALUATION_CHUNK_ROWS):
            chunk = X[start : start + EVALUATION_CHUNK_ROWS]
            self._bind(chunk.shape[0])
            output[start : start + chunk.shape[0]] = self._forward(chunk)
        return output

    def evaluate_loss(self, X: Array, y: Array) -> float:
        """The mean loss over the rows of X (no gradients, no penalty), computed in chunks."""
        return self._chunked_loss(self._check_input(X), y, None)

    def loss_and_output(self, X: Array, y: Array) -> tuple[float, Array]:
        """`evaluate_loss` and `forward` of the same rows in one pass: (mean loss, a⁽ᴸ⁾)."""
        X = self._check_input(X)
        output = np.empty((X.shape[0], self.layers[-1].units), dtype=self.dtype)
        return self._chunked_loss(X, y, output), output

    def _chunked_loss(self, X: Array, y: Array, output: Array | None) -> float:
        """The mean loss over the rows of X chunk by chunk; each chunk's a⁽ᴸ⁾ into `output`."""
        total = 0.0
        for start in range(0, X.shape[0], EVALUATION_CHUNK_ROWS):
            chunk = X[start : start + EVALUATION_CHUNK_ROWS]
            self._bind(chunk.shape[0])
            total += chunk.shape[0] * self._forward_with_loss(chunk, y[start : start + len(chunk)])
            if output is not None:  # the loss left the output activation in the top layer
                output[start : start + chunk.shape[0]] = self._top.a
        return total / max(int(X.shape[0]), 1)

    def _forward(self, X: Array) -> Array:
        a = X
        for layer in self.layers:
            a = layer.forward(a)
        return a

    def _forward_with_loss(self, X: Array, y: Array) -> float:
        """Forward pass and the mean loss; leaves δ⁽ᴸ⁾ (or ∂L/∂a⁽ᴸ⁾ for MSE) in the top layer."""
        a = X
        for layer in self._hidden:
            a = layer.forward(a)
        top = self._top
        top.linear(a)
        if not self._loss.fused:
            top.activate()
        return self._loss.value_and_delta(top.z, top.a, y, top.delta)

    def _bind(self, n_samples: int) -> None:
        """Point every layer at the buffers for this batch size, allocating them the first time."""
        if n_samples == self._bound_rows:
            return
        buffers = self._buffers.get(n_samples)
        if buffers is None:
            if len(self._buffers) >= _MAX_CACHED_BATCH_SIZES:
                self._buffers.pop(next(iter(self._buffers)))
            buffers = [layer.allocate(n_samples) for layer in self.layers]
            self._buffers[n_samples] = buffers
        for layer, layer_buffers in zip(self.layers, buffers, strict=True):
            layer.bind(layer_buffers)
        self._bound_rows = n_samples

    def _check_input(self, X: Array) -> Array:
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise DataError(
                f"expected inputs of shape (n_samples, {self.n_inputs}), got {tuple(X.shape)}"
            )
        if X.dtype != self.dtype:
            X = X.astype(self.dtype)  # callers that care about speed pass the network's dtype
        return X

    def _add_weight_decay(self, l2: float) -> None:
        if self._l2_scratch is None:
            self._l2_scratch = [np.empty_like(layer.W) for layer in self.layers]
        for layer, scratch in zip(self.layers, self._l2_scratch, strict=True):
            np.multiply(layer.W, l2, out=scratch, dtype=self.dtype)
            layer.grads["W"] += scratch

    # --- caches, weights and sizes -----------------------------------------------------------

    @property
    def z(self) -> list[Array]:
        return [layer.z for layer in self.layers]

    @property
    def a(self) -> list[Array]:
        return [layer.a for layer in self.layers]

    @property
    def delta(self) -> list[Array]:
        return [layer.delta for layer in self.layers]

    def l2_penalty(self, l2: float) -> float:
        """½λ Σ_l ‖W⁽ˡ⁾‖²_F (biases and activation parameters are not penalised)."""
        squares = sum(squared_norm(layer.W) for layer in self.layers)  # no copy of a transposed W
        return 0.5 * l2 * squares

    def parameter_count(self) -> int:
        return sum(array.size for layer_params in self.params for array in layer_params.values())

    def get_weights(self) -> dict[str, Array]:
        """Copies of every parameter, named W1, b1, W2, …, gamma{l}, beta{l}."""
        return {
            f"{name}{index}": array.copy()
            for index, layer_params in enumerate(self.params, start=1)
            for name, array in layer_params.items()
        }

    def set_weights(self, weights: dict[str, Array]) -> None:
        """Copy named arrays into the parameters in place (cast to the network's dtype)."""
        current = self.get_weights()
        if set(weights) != set(current):
            missing = sorted(set(current) - set(weights))
            extra = sorted(set(weights) - set(current))
            raise DataError(f"weights do not fit the network: missing {missing}, extra {extra}")
        for index, layer_params in enumerate(self.params, start=1):
            for name, array in layer_params.items():
                given = np.asarray(weights[f"{name}{index}"])
                if given.shape != array.shape:
                    raise DataError(
                        f"{name}{index} has shape {given.shape}; the network needs {array.shape}"
                    )
                np.copyto(array, given, casting="unsafe")


def _build_layers(spec: NetworkSpec, n_inputs: int, dtype: np.dtype[Any]) -> list[Layer]:
    layers: list[Layer] = []
    fan_in = n_inputs
    for layer_spec in spec.layers:
        if isinstance(layer_spec, MaxoutLayer):
            layers.append(Maxout(layer_spec.units, layer_spec.pieces, fan_in, dtype))
        else:
            activation = make_activation(layer_spec.activation, layer_spec.units, dtype)
            layers.append(Dense(layer_spec.units, fan_in, activation, dtype))
        fan_in = layer_spec.units
    expected = layer_shapes(spec, n_inputs)
    actual = [{k: v.shape for k, v in layer.params.items()} for layer in layers]
    assert actual == expected, "layer parameters disagree with engine.spec.layer_shapes"
    return layers


def _initialize(layer_spec: Any, layer: Layer, init: str, rng: np.random.Generator) -> None:
    is_maxout = isinstance(layer, Maxout)
    activation = None if is_maxout else layer_spec.activation.name
    name = resolve_initializer(init, activation=activation, maxout=is_maxout)
    layer.W[...] = initialize_weights(
        name, layer.W.shape, fan_in=layer.fan_in, fan_out=layer.units, dtype=layer.dtype, rng=rng
    )
    layer.b.fill(0)
