"""The sweep that bench/sweep.py times: 8 digits-sized jobs, 20 epochs each, as API bodies and as
worker payloads (the same specs, so the baseline and the services train identical jobs)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from bench._data import DIGITS_CSV

__all__ = ["GRID", "base_body", "digits_arrays", "sweep_payloads"]

GRID = {"optimizer.learning_rate": [0.1, 0.05, 0.02, 0.01], "seed": [1, 2]}


def base_body(dataset_id: str, *, epochs: int) -> dict[str, Any]:
    """64-64-10 tanh/softmax on UCI digits, batch 32, a 20 % validation split."""
    return {
        "dataset_id": dataset_id,
        "validation": {"split": 0.2},
        "batch_size": 32,
        "epochs": epochs,
        "network": {
            "layers": [{"units": 64, "activation": "tanh"}, {"units": 10, "activation": "softmax"}]
        },
        "optimizer": {"name": "sgd", "learning_rate": 0.1},
    }


def digits_arrays() -> dict[str, np.ndarray]:
    table = np.loadtxt(DIGITS_CSV, delimiter=",", skiprows=1, dtype=np.float64)
    return {"X": table[:, :-1], "y": table[:, -1].astype(np.int64)}


def sweep_payloads(*, epochs: int) -> list[dict[str, Any]]:
    """run_job payloads for every grid point (what the supervisor would send a worker)."""
    payloads = []
    for learning_rate, seed in itertools.product(*GRID.values()):
        spec = base_body("digits", epochs=epochs)
        spec.pop("dataset_id"), spec.pop("validation")
        spec["optimizer"] = {"name": "sgd", "learning_rate": learning_rate}
        spec["seed"] = seed
        payloads.append(
            {
                "job_id": f"bench-{learning_rate}-{seed}",
                "spec": spec,
                "task": "classification",
                "n_classes": 10,
                "validation_split": 0.2,
                "metadata": {},
            }
        )
    return payloads
