"""The engine alone, doing the service benchmark's training job (child process).

Same data as the service receives, in the form a service worker hands it to train(): the service
stores features as float64, and a worker keeps each dataset cast to the job's dtype (float32 here)
from the first job on it, as an engine user would hold it (mnist_like is float32 already); same
spec, same checkpoint-every-epoch, same niceness as a service worker (workers run niced so the API
stays responsive; on a busy machine that alone changes their CPU share); timed is the whole train()
call, after an untimed warm-up run on a few rows (a service worker is warm too).
"""

from __future__ import annotations

import os
import time
from typing import Any

from bench import _data
from bench._engine_tasks import MNIST_CLASSES

WARM_UP_ROWS = 2048


def job_body(n_samples: int, epochs: int, batch_size: int, learning_rate: float,
             seed: int) -> dict[str, Any]:
    """The job (POST /v1/jobs body without dataset_id): 784-256-128-10 ReLU, plain SGD."""
    return {
        "network": {"layers": [{"units": 256, "activation": "relu"},
                               {"units": 128, "activation": "relu"},
                               {"units": MNIST_CLASSES, "activation": "softmax"}]},
        "optimizer": {"name": "sgd", "learning_rate": learning_rate},
        "batch_size": batch_size, "epochs": epochs, "seed": seed, "diagnostics_every": 1,
    }


def engine_job(n_samples: int, epochs: int, batch_size: int, learning_rate: float,
               niceness: int = 0, seed: int = 0) -> dict[str, Any]:
    from engine.spec import TrainingSpec
    from engine.training import train

    os.nice(niceness)
    X, y = _data.mnist_like(n_samples, seed=seed)
    body = job_body(n_samples, epochs, batch_size, learning_rate, seed)
    warm = TrainingSpec.model_validate({**body, "epochs": 1})
    train(warm, X[:WARM_UP_ROWS], y[:WARM_UP_ROWS], task="classification", n_classes=MNIST_CLASSES)
    spec = TrainingSpec.model_validate(body)
    started = time.perf_counter()
    result = train(spec, X, y, task="classification", n_classes=MNIST_CLASSES)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "epoch_seconds": [row["seconds"] for row in result.history],
            "train_accuracy": result.history[-1]["train_accuracy"], "niceness": os.nice(0)}
