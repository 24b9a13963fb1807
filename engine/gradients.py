"""Gradients on demand: the exact backpropagated gradient of the mean loss over given rows.

For a model at its current weights and a batch (X, y) of n rows:
    loss = (1/n) Σ_n L(y⁽ⁿ⁾, ŷ⁽ⁿ⁾)  [+ ½λ Σ_l ‖W⁽ˡ⁾‖²_F with include_l2]
and per layer l: ∂loss/∂W⁽ˡ⁾, ∂loss/∂b⁽ˡ⁾ and δ⁽ˡ⁾ = ∂loss/∂z⁽ˡ⁾ (each row carries the 1/n), with
the statistics of the training diagnostics on this batch (norms, mean |δ|, ‖W‖, activation
mean/std, saturated, dead and duplicate fractions; no update ratio, as nothing is updated) and
the findings their rules give (vanishing or exploding gradients, dead, saturated or symmetric
units). For a maxout layer δ is taken with respect to its output (the winning piece).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.diagnostics import layer_diagnostics
from engine.findings import layer_findings
from engine.model import Model

__all__ = ["compute_gradients"]

Array = np.ndarray


def compute_gradients(
    model: Model,
    X_raw: Any,
    y: Any,
    *,
    include_l2: bool = False,
    full: bool = False,
    l2: float | None = None,
) -> dict[str, Any]:
    """{"loss", "layers": [{"layer", "activation", "grad_norm_w", …}], "findings": […]}.

    With `full`, each layer also has the arrays "dW", "db", "delta" (and "dgamma"/"dbeta" for
    PReLU / learnable swish). λ is `l2`, else `model.metadata["l2"]`, else 0; it is used only with
    `include_l2`, and then "loss" includes the penalty too. The statistics are those of the training
    diagnostics (engine.diagnostics.layer_diagnostics): norms accumulate in the model's dtype.
    """
    X = model.prepare_inputs(X_raw)
    targets = model.prepare_targets(y, X.shape[0])
    penalty = _l2_strength(model, l2) if include_l2 else 0.0
    network = model.network
    with model.lock:
        loss = network.loss_and_gradients(X, targets, l2=penalty)
        if penalty:
            loss += network.l2_penalty(penalty)
        statistics = layer_diagnostics(network)
        for row in statistics:
            del row["update_ratio"]  # a training-step statistic: nothing was updated here
        layers = [
            _layer_report(row, grads, delta, full)
            for row, grads, delta in zip(statistics, network.grads, network.delta, strict=True)
        ]
    return {"loss": float(loss), "layers": layers, "findings": layer_findings(statistics)}


def _l2_strength(model: Model, l2: float | None) -> float:
    value = model.metadata.get("l2", 0.0) if l2 is None else l2
    return float(value or 0.0)


def _layer_report(
    statistics: dict[str, Any], grads: dict[str, Array], delta: Array, full: bool
) -> dict[str, Any]:
    report = dict(statistics)
    if full:
        report.update(dW=grads["W"].copy(), db=grads["b"].copy(), delta=delta.copy())
        for name in ("gamma", "beta"):
            if name in grads:
                report[f"d{name}"] = grads[name].copy()
    return report
