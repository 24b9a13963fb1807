"""Measurements that run inside a fresh child process (see bench._child); each returns plain data.

Warm-up is excluded everywhere: our engine trains two epochs and only the second is timed (the time
between the two epoch callbacks, so diagnostics, metrics and checkpoints are inside it); PyTorch and
scikit-learn train one untimed epoch first. Accuracy is measured on a held-out set after the timed
epoch, so every implementation has seen the same two passes over the data.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bench import _data, _floor
from bench._numpy_mlp import HandWrittenMLP

MNIST_HIDDEN = (256, 128)
MNIST_CLASSES = 10
DIGITS_HIDDEN = 64
DIGITS_CLASSES = 10


def mnist_spec(batch_size: int, *, epochs: int, learning_rate: float, seed: int,
               standardize: bool = False) -> Any:
    from engine.spec import TrainingSpec

    layers = [{"units": units, "activation": "relu"} for units in MNIST_HIDDEN]
    layers.append({"units": MNIST_CLASSES, "activation": "softmax"})
    return TrainingSpec.model_validate({
        "network": {"layers": layers}, "loss": "cross_entropy",
        "optimizer": {"name": "sgd", "learning_rate": learning_rate},
        "batch_size": batch_size, "epochs": epochs, "seed": seed, "dtype": "float32",
        "standardize": standardize, "diagnostics_every": 1,
    })


def split(n_samples: int, n_test: int, seed: int) -> tuple[np.ndarray, ...]:
    X, y = _data.mnist_like(n_samples + n_test, seed=seed)
    return X[:n_samples], y[:n_samples], X[n_samples:], y[n_samples:]


def ours_epoch(n_samples: int, n_test: int, batch_size: int, learning_rate: float,
               seed: int = 0) -> dict[str, Any]:
    """Our engine: epoch 2 of train(), plus the GEMM floor of that epoch in the same process."""
    from engine.training import train

    X, y, X_test, y_test = split(n_samples, n_test, seed)
    spec = mnist_spec(batch_size, epochs=2, learning_rate=learning_rate, seed=seed)
    stamps: list[float] = []
    result = train(spec, X, y, task="classification", n_classes=MNIST_CLASSES,
                   on_epoch=lambda report: stamps.append(time.perf_counter()))
    seconds = stamps[1] - stamps[0]
    weights = [layer["W"] for layer in result.model.network.params]
    floor = _floor.gemm_floor_seconds(weights, n_samples, batch_size, repeats=2)
    accuracy = float(np.mean(result.model.predict(X_test) == y_test))
    return {"seconds": seconds, "floor_seconds": floor, "floor_ratio": seconds / floor,
            "samples_per_second": n_samples / seconds, "accuracy": accuracy,
            "engine_epoch_seconds": [row["seconds"] for row in result.history]}


def numpy_epoch(n_samples: int, n_test: int, batch_size: int, learning_rate: float,
                seed: int = 0) -> dict[str, Any]:
    """The hand-written NumPy MLP (bench._numpy_mlp): one untimed epoch, one timed, then the GEMM
    floor of its full batches (it drops the partial last one) and its test accuracy."""
    X, y, X_test, y_test = split(n_samples, n_test, seed)
    model = HandWrittenMLP((X.shape[1], *MNIST_HIDDEN, MNIST_CLASSES), batch_size, seed)
    rng = np.random.default_rng(seed)
    model.epoch(X, y, rng.permutation(n_samples), learning_rate)  # warm-up
    order = rng.permutation(n_samples)
    started = time.perf_counter()
    model.epoch(X, y, order, learning_rate)
    seconds = time.perf_counter() - started
    rows = n_samples - n_samples % batch_size
    floor = _floor.gemm_floor_seconds([W.T for W in model.W], rows, batch_size, repeats=2)
    accuracy = float(np.mean(model.predict(X_test) == y_test))
    return {"seconds": seconds, "floor_seconds": floor, "floor_ratio": seconds / floor,
            "samples_per_second": rows / seconds, "accuracy": accuracy}


def torch_epoch(n_samples: int, n_test: int, batch_size: int, learning_rate: float,
                threads: int, seed: int = 0) -> dict[str, Any]:
    """PyTorch CPU, idiomatic: nn.Sequential + optim.SGD, a randperm per epoch, tensor indexing."""
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    X, y, X_test, y_test = (torch.from_numpy(a) for a in split(n_samples, n_test, seed))
    widths = (X.shape[1], *MNIST_HIDDEN)
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(MNIST_HIDDEN[-1], MNIST_CLASSES))
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    _torch_epoch(model, optimizer, X, y, batch_size)  # warm-up
    started = time.perf_counter()
    _torch_epoch(model, optimizer, X, y, batch_size)
    seconds = time.perf_counter() - started
    with torch.no_grad():
        accuracy = float((model(X_test).argmax(dim=1) == y_test).float().mean())
    return {"seconds": seconds, "samples_per_second": n_samples / seconds, "accuracy": accuracy,
            "torch_threads": torch.get_num_threads()}


def _torch_epoch(model: Any, optimizer: Any, X: Any, y: Any, batch_size: int) -> None:
    import torch
    from torch import nn

    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(X.shape[0])
    for start in range(0, X.shape[0], batch_size):
        rows = order[start : start + batch_size]
        optimizer.zero_grad()
        loss = loss_fn(model(X[rows]), y[rows])
        loss.backward()
        optimizer.step()


def sklearn_epoch(n_samples: int, n_test: int, batch_size: int, learning_rate: float,
                  dtype: str, seed: int = 0) -> dict[str, Any]:
    """scikit-learn MLPClassifier(solver="sgd"): one partial_fit call is one epoch."""
    from sklearn.neural_network import MLPClassifier

    X, y, X_test, y_test = split(n_samples, n_test, seed)
    X, X_test = X.astype(dtype, copy=False), X_test.astype(dtype, copy=False)
    model = MLPClassifier(
        hidden_layer_sizes=MNIST_HIDDEN, activation="relu", solver="sgd", alpha=0.0,
        batch_size=batch_size, learning_rate_init=learning_rate, momentum=0.0,
        nesterovs_momentum=False, shuffle=True, random_state=seed,
    )
    classes = np.arange(MNIST_CLASSES)
    model.partial_fit(X, y, classes=classes)  # warm-up
    started = time.perf_counter()
    model.partial_fit(X, y, classes=classes)
    seconds = time.perf_counter() - started
    accuracy = float(model.score(X_test, y_test))
    return {"seconds": seconds, "samples_per_second": n_samples / seconds, "accuracy": accuracy,
            "weights_dtype": str(model.coefs_[0].dtype)}
