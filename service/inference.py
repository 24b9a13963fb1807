"""Predict, evaluate and compute gradients with a stored model (the lecture's model.evaluate, BP).

Inputs are raw feature rows; the engine Model applies its stored standardisation. Outputs are plain
JSON-able data with finite floats.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.gradients import compute_gradients
from engine.model import Model as EngineModel
from service.model_schemas import (
    ClassificationEvaluation,
    Finding,
    GradientsOut,
    LayerGradients,
    PredictionOut,
    RegressionEvaluation,
)
from service.views import finite_json, finite_list

__all__ = ["evaluate", "gradients", "predict"]


def predict(model: EngineModel, X: np.ndarray, *, classes: list[Any] | None) -> PredictionOut:
    """Class labels + probabilities (classification) or values (regression) for the rows of X."""
    if classes is None:
        values = model.predict(X)
        column = values[:, 0] if values.shape[1] == 1 else values
        return PredictionOut(predictions=finite_list(column), probabilities=None)
    probabilities = model.predict_proba(X)
    predicted = np.argmax(probabilities, axis=1)
    return PredictionOut(
        predictions=[classes[i] for i in predicted.tolist()],
        probabilities=finite_list(probabilities),
        classes=classes,
    )


def evaluate(
    model: EngineModel, X: np.ndarray, y: np.ndarray, *, classes: list[Any] | None
) -> ClassificationEvaluation | RegressionEvaluation:
    """Mean loss (no L2 term) plus accuracy and the confusion matrix, or mse, mae and r²."""
    loss, predicted = model.evaluate(X, y)  # one forward pass for both
    if classes is not None:
        return _classification_metrics(loss, predicted, y, classes)
    return _regression_metrics(loss, np.asarray(predicted, dtype=np.float64).reshape(y.shape), y)


def _classification_metrics(
    loss: float, predicted: np.ndarray, y: np.ndarray, classes: list[Any]
) -> ClassificationEvaluation:
    n_classes = len(classes)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (y, predicted), 1)  # rows: true class, columns: predicted class
    return ClassificationEvaluation(
        n_samples=int(y.shape[0]),
        loss=_finite_or_max(loss),
        accuracy=float(np.mean(predicted == y)),
        classes=classes,
        confusion_matrix=confusion.tolist(),
    )


def _finite_or_max(value: float) -> float:
    # A model that puts probability 0 on a true class has infinite cross-entropy; JSON has no inf.
    return value if np.isfinite(value) else float(np.finfo(np.float64).max)


def _regression_metrics(loss: float, predicted: np.ndarray, y: np.ndarray) -> RegressionEvaluation:
    """mse, mae over all values; r² = 1 − SS_res/SS_tot per target, averaged (null: y constant)."""
    residual = predicted - y
    ss_res = np.sum(residual**2, axis=0)
    ss_tot = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
    varying = ss_tot > 0
    r2 = float(np.mean(1.0 - ss_res[varying] / ss_tot[varying])) if varying.any() else None
    return RegressionEvaluation(
        n_samples=int(y.shape[0]),
        loss=_finite_or_max(loss),
        mse=_finite_or_max(float(np.mean(residual**2))),
        mae=_finite_or_max(float(np.mean(np.abs(residual)))),
        r2=r2 if r2 is None or np.isfinite(r2) else None,
    )


def gradients(
    model: EngineModel, X: np.ndarray, y: np.ndarray, *, full: bool, include_l2: bool
) -> GradientsOut:
    """Exact ∂L/∂θ of the mean loss over the rows at the model's weights (engine.gradients)."""
    result = compute_gradients(model, X, y, include_l2=include_l2, full=full)
    layers = [
        LayerGradients(
            **finite_json(
                {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in layer.items()}
            )
        )
        for layer in result["layers"]
    ]
    return GradientsOut(loss=_finite_or_max(float(result["loss"])), layers=layers,
                        findings=[Finding(**finding) for finding in result["findings"]])
