"""Findings: plain-language advice drawn from per-layer diagnostics and input statistics.

A finding is `{"code", "severity", "layer", "message"}` (layer numbered from 1, or None when it is
about the whole run). Codes: vanishing_gradient, exploding_gradient, dead_units, saturated_units,
symmetric_units, uncentered_inputs, diverged. Severities: "warning" (training works, but badly) and
"error" (training cannot succeed as configured).

The rules read only plain data: the layer dicts of `engine.diagnostics.layer_diagnostics` and the
dict of `input_statistics`. The thresholds below say why they sit where they do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "DEAD_FRACTION",
    "EXPLODING_RATIO",
    "EXPLODING_UPDATE_RATIO",
    "FAR_MEAN_RATIO",
    "FINDING_CODES",
    "SATURATED_FRACTION",
    "UNCENTERED_FEATURE_FRACTION",
    "VANISHING_RATIO",
    "diverged_finding",
    "findings",
    "input_statistics",
]

FINDING_CODES = (
    "vanishing_gradient", "exploding_gradient", "dead_units", "saturated_units",
    "symmetric_units", "uncentered_inputs", "diverged",
)

# A layer whose weight gradient is below 1/1000 of the output layer's moves a thousand times more
# slowly (relative to a healthy network, where the ratio stays within one or two orders of
# magnitude); ten logistic layers give ≈ 0.25⁹ ≈ 4e-6, ten ReLU layers with He init ≈ 1.
VANISHING_RATIO = 1e-3

# The mirror image: a lower layer's gradient a thousand times the output layer's means the error
# signal is amplified on the way down (weights too large for the depth).
EXPLODING_RATIO = 1e3

# One step that changes W by more than W itself (‖ΔW‖ > ‖W‖) throws away what was learned; healthy
# SGD steps are around 1e-3 of the weights.
EXPLODING_UPDATE_RATIO = 1.0

# Half of a layer's ReLU units silent on a whole batch means half its capacity is gone; a few dead
# units are normal, so a lower bar would cry wolf.
DEAD_FRACTION = 0.5

# When most activations sit where f′ < 5% of its maximum, most of the error signal is blocked.
SATURATED_FRACTION = 0.5

# Exercise 4-1: if a feature never changes sign, every weight gradient δ·x_j of a unit shares δ's
# sign, so the weights can only all grow or all shrink in one step and descent zig-zags. The same
# holds approximately when |mean| exceeds the spread (FAR_MEAN_RATIO · std). We warn when at least
# half of the varying features are like that.
UNCENTERED_FEATURE_FRACTION = 0.5
FAR_MEAN_RATIO = 1.0


def _finding(code: str, severity: str, layer: int | None, message: str) -> dict[str, Any]:
    return {"code": code, "severity": severity, "layer": layer, "message": message}


def findings(
    epochs_diagnostics: Sequence[Sequence[dict[str, Any]]],
    input_stats: dict[str, Any] | None = None,
    *,
    divergence: str | None = None,
) -> list[dict[str, Any]]:
    """Findings for a run: layer rules on the latest diagnosed epoch, the input rule, divergence.

    `epochs_diagnostics` lists each epoch's layer dicts (empty lists for undiagnosed epochs);
    `input_stats` comes from `input_statistics` (None when the inputs were standardised);
    `divergence` is the run's divergence message, if it diverged.
    """
    empty: Sequence[dict[str, Any]] = []
    latest = next((layers for layers in reversed(epochs_diagnostics) if layers), empty)
    result = layer_findings(latest)
    if input_stats is not None:
        result += _uncentered(input_stats)
    if divergence is not None:
        result.append(diverged_finding(divergence))
    return result


def layer_findings(layers: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-layer rules applied to one epoch's diagnostics."""
    if not layers:
        return []
    result = _gradient_flow(layers)
    for row in layers[:-1]:  # hidden layers: the output layer's shape is set by the loss
        result += _hidden_layer(row)
    return result


def diverged_finding(message: str) -> dict[str, Any]:
    return _finding("diverged", "error", None, message)


def _gradient_flow(layers: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    top = layers[-1]["grad_norm_w"]
    if top is not None and math.isfinite(top) and top > 0.0:
        # A norm reported as None overflowed the dtype (diagnostics turn inf into None): as large
        # as a gradient gets, relative to a finite last layer.
        ratios = [(row["layer"], math.inf if row["grad_norm_w"] is None
                   else row["grad_norm_w"] / top) for row in layers[:-1]]
        vanishing = [(layer, r) for layer, r in ratios if r < VANISHING_RATIO]
        if vanishing:
            highest = max(layer for layer, _ in vanishing)
            layer, ratio = min(vanishing, key=lambda item: item[1])
            result.append(_finding(
                "vanishing_gradient", "warning", highest,
                f"gradients vanish below layer {highest + 1}: the gradient norm of layer {layer} "
                f"is {ratio:.0e} of the last layer's; try ReLU or He initialisation",
            ))
        exploding = [(layer, r) for layer, r in ratios if r > EXPLODING_RATIO]
        if exploding:
            layer, ratio = max(exploding, key=lambda item: item[1])
            size = ("too large for the weights' dtype" if math.isinf(ratio)
                    else f"{ratio:.0e} times the last layer's")
            result.append(_finding(
                "exploding_gradient", "warning", layer,
                f"gradients grow towards the input: the gradient norm of layer {layer} is "
                f"{size}; use Xavier or He initialisation, a lower learning rate, or fewer layers",
            ))
    for row in layers:
        ratio = row.get("update_ratio")
        if ratio is not None and ratio > EXPLODING_UPDATE_RATIO:
            result.append(_finding(
                "exploding_gradient", "warning", row["layer"],
                f"one step changed the weights of layer {row['layer']} by {ratio:.1f}× their own "
                "size; lower the learning rate or standardize the inputs",
            ))
    return result


def _hidden_layer(row: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    layer, name = row["layer"], row.get("activation", "?")
    dead = row.get("dead_fraction")
    if dead is not None and dead >= DEAD_FRACTION:
        result.append(_finding(
            "dead_units", "warning", layer,
            f"{dead:.0%} of layer {layer}'s {name} units were never active on a whole batch "
            "(dead units get no gradient); lower the learning rate, use He initialisation, "
            "or try leaky_relu or elu",
        ))
    saturated = row.get("saturated_fraction")
    if saturated is not None and saturated >= SATURATED_FRACTION:
        result.append(_finding(
            "saturated_units", "warning", layer,
            f"{saturated:.0%} of layer {layer}'s {name} activations sit on the flat parts where "
            "the derivative is nearly 0; standardize the inputs, use Xavier initialisation or a "
            "lower learning rate, or try relu",
        ))
    duplicates = row.get("duplicate_fraction")
    if duplicates is not None and duplicates > 0.0:
        result.append(_finding(
            "symmetric_units", "error", layer,
            f"{duplicates:.0%} of layer {layer}'s units are exact copies of another unit; units "
            "that start equal get equal gradients and never differ (as after zero "
            "initialisation); use a random initialiser such as 'auto' or 'xavier_uniform'",
        ))
    return result


def input_statistics(
    minimum: np.ndarray, maximum: np.ndarray, mean: np.ndarray, std: np.ndarray
) -> dict[str, Any]:
    """Per-feature facts for the uncentered_inputs rule, from the training inputs' moments."""
    varying = maximum > minimum
    one_signed = varying & ((minimum >= 0) | (maximum <= 0))
    far_mean = varying & (np.abs(mean) > FAR_MEAN_RATIO * std)
    n_varying = int(np.count_nonzero(varying))
    return {
        "n_varying_features": n_varying,
        "one_signed_fraction": float(np.count_nonzero(one_signed) / max(n_varying, 1)),
        "far_mean_fraction": float(np.count_nonzero(far_mean) / max(n_varying, 1)),
    }


def _uncentered(stats: dict[str, Any]) -> list[dict[str, Any]]:
    one_signed, far_mean = stats["one_signed_fraction"], stats["far_mean_fraction"]
    if max(one_signed, far_mean) < UNCENTERED_FEATURE_FRACTION:
        return []
    if one_signed >= far_mean:
        what = f"{one_signed:.0%} of the features never change sign"
    else:
        what = f"{far_mean:.0%} of the features have a mean larger than their spread"
    return [_finding(
        "uncentered_inputs", "warning", None,
        f"the inputs are not centred: {what}, so each unit's weight gradients share one sign "
        "and gradient descent zig-zags (exercise 4-1); set standardize to true",
    )]
