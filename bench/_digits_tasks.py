"""UCI digits, 64-64-10 tanh, batch 32: our engine vs PyTorch in a child process.

Small networks are where per-call overhead shows. Both sides train on the same standardised split
(ours standardises inside train(), PyTorch gets the same x′ = (x − mean)/scale computed here), with
the same plain SGD learning rate; each timed run follows an untimed one-epoch warm-up run.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bench import _data

HIDDEN = 64
CLASSES = 10


def digits_spec(epochs: int, batch_size: int, learning_rate: float, seed: int) -> Any:
    from engine.spec import TrainingSpec

    return TrainingSpec.model_validate({
        "network": {"layers": [{"units": HIDDEN, "activation": "tanh"},
                               {"units": CLASSES, "activation": "softmax"}]},
        "loss": "cross_entropy", "optimizer": {"name": "sgd", "learning_rate": learning_rate},
        "batch_size": batch_size, "epochs": epochs, "seed": seed, "dtype": "float32",
        "standardize": True, "diagnostics_every": 1,
    })


def ours_digits(
    epochs: int, batch_size: int, learning_rate: float, seed: int = 0
) -> dict[str, Any]:
    """Wall time of the whole train() call (set-up, epochs, diagnostics, checkpoints)."""
    from engine.training import train

    X, y, X_test, y_test = _data.digits(seed=seed)
    warm = digits_spec(1, batch_size, learning_rate, seed)
    train(warm, X, y, task="classification", n_classes=CLASSES)
    spec = digits_spec(epochs, batch_size, learning_rate, seed)
    started = time.perf_counter()
    result = train(spec, X, y, task="classification", n_classes=CLASSES)
    seconds = time.perf_counter() - started
    accuracy = float(np.mean(result.model.predict(X_test) == y_test))
    return _figures(seconds, epochs * X.shape[0], accuracy, epochs * -(-X.shape[0] // batch_size))


def torch_digits(epochs: int, batch_size: int, learning_rate: float, threads: int,
                 seed: int = 0) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    X, y, X_test, y_test = _data.digits(seed=seed)
    mean, scale = X.mean(axis=0), X.std(axis=0)
    scale[scale == 0] = 1.0
    X = torch.from_numpy(((X - mean) / scale).astype(np.float32))
    X_test = torch.from_numpy(((X_test - mean) / scale).astype(np.float32))
    y, y_test = torch.from_numpy(y), torch.from_numpy(y_test)
    _torch_run(X, y, 1, batch_size, learning_rate)  # warm-up
    started = time.perf_counter()
    model = _torch_run(X, y, epochs, batch_size, learning_rate)
    seconds = time.perf_counter() - started
    with torch.no_grad():
        accuracy = float((model(X_test).argmax(dim=1) == y_test).float().mean())
    return _figures(seconds, epochs * X.shape[0], accuracy, epochs * -(-X.shape[0] // batch_size))


def _torch_run(X: Any, y: Any, epochs: int, batch_size: int, learning_rate: float) -> Any:
    import torch
    from torch import nn

    model = nn.Sequential(nn.Linear(X.shape[1], HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, CLASSES))
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        order = torch.randperm(X.shape[0])
        for start in range(0, X.shape[0], batch_size):
            rows = order[start : start + batch_size]
            optimizer.zero_grad()
            loss_fn(model(X[rows]), y[rows]).backward()
            optimizer.step()
    return model


def _figures(seconds: float, samples: int, accuracy: float, steps: int) -> dict[str, Any]:
    return {"seconds": seconds, "samples_per_second": samples / seconds, "accuracy": accuracy,
            "microseconds_per_step": 1e6 * seconds / steps}
