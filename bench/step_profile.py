"""Where one training step's time goes: `.venv/bin/python bench/step_profile.py [--batch 128]`.

Replays `Network.descend` (plain SGD fused into backpropagation) for one epoch of the MNIST-shaped
benchmark (784-256-128-10 ReLU, float32) with a clock around every call, grouped by kind, next to
the GEMM floor of the same epoch. Set OPENBLAS_NUM_THREADS to compare 1 and 2 BLAS threads; the
sum of the GEMM rows against the floor shows whether the products slow down between element-wise
passes (the weight-gradient GEMM also applies the SGD update: β = 1 in BLAS).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import _data, _floor  # noqa: E402
from engine.batching import BatchGatherer  # noqa: E402
from engine.blas import subtract_product  # noqa: E402
from engine.network import Network  # noqa: E402
from engine.optimizers import SGD  # noqa: E402
from engine.spec import NetworkSpec  # noqa: E402

SPEC = {"layers": [{"units": 256, "activation": "relu"}, {"units": 128, "activation": "relu"},
                   {"units": 10, "activation": "softmax"}]}
LEARNING_RATE = 0.01


def timed_epoch(network: Network, gatherer: BatchGatherer, order: np.ndarray, batch: int,
                clock: dict[str, float]) -> None:
    """One epoch of full batches, the step written out call by call as loss_and_gradients runs."""
    layers, top = network.layers, network.layers[-1]
    optimizer = SGD(network.params)
    now = time.perf_counter

    def tick(kind: str, started: float) -> float:
        stamp = now()
        clock[kind] += stamp - started
        return stamp

    for start in range(0, order.shape[0] - batch + 1, batch):
        t = now()
        X, y = gatherer.gather(order[start : start + batch])
        t = tick("gather", t)
        network._bind(batch)
        a = X
        for layer in layers:
            np.matmul(a, layer.W.T, out=layer.z)
            t = tick("GEMM forward", t)
            layer.z += layer.b
            t = tick("bias add", t)
            if layer is not top:
                layer.activate()
                t = tick("activation forward", t)
            a = layer.a
        network._loss.value_and_delta(top.z, top.a, y, top.delta)
        top.delta *= top.dtype.type(LEARNING_RATE)
        t = tick("softmax cross-entropy", t)
        keep = 1.0  # no L2 here
        for layer, below in [*network._backward_pairs, (layers[0], None)]:
            if below is not None:
                np.matmul(layer.delta, layer.W, out=below.delta)
                t = tick("GEMM input gradient", t)
            subtract_product(layer.W.T, X if below is None else below.a, layer.delta, keep=keep,
                             scratch=layer.grads["W"].T)
            t = tick("GEMM weight gradient + SGD update", t)
            np.matmul(layer._ones, layer.delta, out=layer.grads["b"])
            layer.b -= layer.grads["b"]
            t = tick("bias gradient (GEMV) + update", t)
            if below is not None:
                below.backprop_activation()
                t = tick("activation backward", t)
        optimizer.t += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--samples", type=int, default=60_000)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up)")
    args = parser.parse_args()
    X, y = _data.mnist_like(args.samples, seed=0)
    rng = np.random.default_rng(0)
    network = Network.from_spec(NetworkSpec.model_validate(SPEC), X.shape[1],
                                loss="cross_entropy", rng=rng)
    gatherer = BatchGatherer(X, y, args.batch)
    order = rng.permutation(args.samples)
    timed_epoch(network, gatherer, order, args.batch, defaultdict(float))  # warm-up
    clock: dict[str, float] = defaultdict(float)
    started = time.perf_counter()
    for _ in range(args.epochs):
        timed_epoch(network, gatherer, order, args.batch, clock)
    steps = args.epochs * (args.samples // args.batch)
    step_us = (time.perf_counter() - started) / steps * 1e6
    weights = [layer["W"] for layer in network.params]
    floor_us = _floor.gemm_floor_seconds(weights, args.samples, args.batch) / (
        args.samples / args.batch) * 1e6
    print(f"batch {args.batch}: {step_us:.0f} µs per step; GEMM floor {floor_us:.0f} µs "
          f"({step_us / floor_us:.2f}×)")
    for kind, seconds in sorted(clock.items(), key=lambda item: -item[1]):
        print(f"  {kind:24s} {seconds / steps * 1e6:7.1f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
