"""Theorem 4.1 in practice: one hidden layer fits sin(2πx) on [0, 1], better with more units."""

from __future__ import annotations

import numpy as np

from engine.spec import TrainingSpec
from engine.training import train


def _max_error(units: int) -> float:
    x = np.linspace(0.0, 1.0, 200).reshape(-1, 1)
    spec = TrainingSpec.model_validate({
        "network": {"layers": [{"units": units, "activation": "tanh"},
                               {"units": 1, "activation": "identity"}]},
        # full batch, Adam annealed to 0 by a cosine schedule so each fit settles
        "optimizer": {"name": "adam", "learning_rate": 0.05, "schedule": {"name": "cosine"}},
        "batch_size": 200, "epochs": 1500, "seed": 0, "dtype": "float64",
        "diagnostics_every": 0,
    })
    result = train(spec, x, np.sin(2 * np.pi * x), task="regression", checkpoint_every=0)
    grid = np.linspace(0.0, 1.0, 1001).reshape(-1, 1)  # between and beyond the training points
    return float(np.abs(result.model.predict(grid) - np.sin(2 * np.pi * grid)).max())


def test_max_error_falls_as_the_hidden_layer_grows() -> None:
    errors = [_max_error(units) for units in (2, 8, 32)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[0] > 0.2  # two tanh units cannot bend twice
    assert errors[2] < 0.05  # 32 units follow the whole period closely
