"""The GEMM floor: the time of only the matrix products one training epoch needs.

Per mini-batch of n rows and per layer l with W⁽ˡ⁾ of shape (fan_out, fan_in):
    forward          z⁽ˡ⁾ = a⁽ˡ⁻¹⁾ W⁽ˡ⁾ᵀ        (n × fan_in) · (fan_in × fan_out)
    weight gradient  ∂L/∂W⁽ˡ⁾ = δ⁽ˡ⁾ᵀ a⁽ˡ⁻¹⁾    (fan_out × n) · (n × fan_in)
    input gradient   ∂L/∂a⁽ˡ⁻¹⁾ = δ⁽ˡ⁾ W⁽ˡ⁾     (n × fan_out) · (fan_out × fan_in), not for l = 1
Timed with NumPy in the caller's process, on the network's own weight arrays, with preallocated
float buffers of the same shapes, batches of the same sizes (the last one partial) as the epoch.
"""

from __future__ import annotations

import time

import numpy as np


def batch_sizes(n_samples: int, batch_size: int) -> list[int]:
    """The mini-batch sizes of one epoch: full batches, then the remainder if any."""
    full, remainder = divmod(n_samples, batch_size)
    return [batch_size] * full + ([remainder] if remainder else [])


def gemm_floor_seconds(
    weights: list[np.ndarray], n_samples: int, batch_size: int, *, repeats: int = 2
) -> float:
    """Fastest of `repeats` timed passes (after one untimed pass) over one epoch's products."""
    buffers = {n: _buffers(weights, n) for n in set(batch_sizes(n_samples, batch_size))}
    sizes = batch_sizes(n_samples, batch_size)
    _one_epoch(weights, buffers, sizes)  # warm-up
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        _one_epoch(weights, buffers, sizes)
        timings.append(time.perf_counter() - started)
    return min(timings)


def _buffers(weights: list[np.ndarray], n_rows: int) -> list[dict[str, np.ndarray]]:
    """Per layer: input a (n, fan_in), z and delta (n, fan_out), upstream (n, fan_in), dW."""
    rng = np.random.default_rng(0)
    layers = []
    for W in weights:
        fan_out, fan_in = W.shape
        layers.append({
            "a": rng.standard_normal((n_rows, fan_in), dtype=W.dtype),
            "z": np.empty((n_rows, fan_out), dtype=W.dtype),
            "delta": rng.standard_normal((n_rows, fan_out), dtype=W.dtype),
            "upstream": np.empty((n_rows, fan_in), dtype=W.dtype),
            "dW": np.empty_like(W),
        })
    return layers


def _one_epoch(weights: list[np.ndarray], buffers: dict[int, list[dict]], sizes: list[int]) -> None:
    for n_rows in sizes:
        layers = buffers[n_rows]
        for W, buf in zip(weights, layers, strict=True):
            np.matmul(buf["a"], W.T, out=buf["z"])
        for index in range(len(weights) - 1, -1, -1):
            W, buf = weights[index], layers[index]
            np.matmul(buf["delta"].T, buf["a"], out=buf["dW"])
            if index > 0:
                np.matmul(buf["delta"], W, out=buf["upstream"])
