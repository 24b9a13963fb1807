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
    """Five-fold cross-validation: every digit is a test digit exactly once, for a network that
    never saw it. (One 360-digit split swings by ±1 point: this setup scored 96.1–98.6% over eight
    random splits, and 97.7–98.0% in 5-fold CV over four fold assignments.)"""
    X, y = _digits()
    folds = np.array_split(np.random.default_rng(0).permutation(len(y)), 5)
    spec = TrainingSpec.model_validate({
        "network": {"layers": [{"units": 64, "activation": "tanh"},
                               {"units": 10, "activation": "softmax"}]},
        "optimizer": {"name": "adam", "learning_rate": 0.001},
        "batch_size": 32, "epochs": 100, "l2": 1e-3, "seed": 0,
    })
    correct = []
    for k, test in enumerate(folds):
        fit = np.concatenate([fold for j, fold in enumerate(folds) if j != k])
        result = train(spec, X[fit], y[fit], task="classification", n_classes=10,
                       checkpoint_every=0)
        correct.append(int(np.sum(result.model.predict(X[test]) == y[test])))
    accuracy = sum(correct) / len(y)
    assert accuracy >= 0.97, [c / len(fold) for c, fold in zip(correct, folds, strict=True)]
