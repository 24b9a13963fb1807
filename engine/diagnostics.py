"""Per-layer training diagnostics, read from one mini-batch's caches (cheap: no extra pass).

After `Network.loss_and_gradients` on a batch and the optimizer step that follows it, each layer l
reports (plain Python floats, None where a quantity does not apply):

    grad_norm_w         ‖∂R/∂W⁽ˡ⁾‖_F  (R includes ½λ‖W‖², so this is the gradient the step used)
    grad_norm_b         ‖∂R/∂b⁽ˡ⁾‖₂
    mean_abs_delta      mean |δ⁽ˡ⁾| over the batch (each row of δ carries the 1/n of the mean loss)
    weight_norm         ‖W⁽ˡ⁾‖_F after the step
    update_ratio        ‖ΔW⁽ˡ⁾‖_F / ‖W⁽ˡ⁾‖_F for that step (None without a snapshot or when W was 0)
    activation_mean/std of a⁽ˡ⁾ over the batch
    saturated_fraction  share of a⁽ˡ⁾ entries where |f′(z)| < SATURATION_DERIVATIVE_RATIO · max f′
                        (logistic, tanh, hard_logistic, hard_tanh hidden layers)
    dead_fraction       share of units with z ≤ 0 on every row of the batch (ReLU-family hidden
                        layers)
    duplicate_fraction  share of units that are exact copies of another unit of the layer (hidden
                        layers; 1 − distinct/units): units that start equal stay equal
    activation          the layer's activation name ("maxout" for maxout layers)

A value that is NaN or infinite (a diverging step) is reported as None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.layers import squared_norm
from engine.spec import MaxoutLayer

__all__ = [
    "DERIVATIVE_MAXIMUM",
    "RELU_FAMILY",
    "SATURATION_DERIVATIVE_RATIO",
    "WeightSnapshot",
    "gradient_stats",
    "layer_diagnostics",
]

Array = np.ndarray

# A unit whose derivative is below 5% of the activation's steepest slope passes on less than a
# twentieth of the error signal; that is the "flat part" where learning stalls. For logistic this
# means σ(z) outside ≈ [0.013, 0.987] (|z| > 4.4), for tanh |tanh z| > 0.975 (|z| > 2.2), and for
# the hard variants exactly the clipped region, where f′ = 0.
SATURATION_DERIVATIVE_RATIO = 0.05

# max f′ of each saturating activation (at z = 0).
DERIVATIVE_MAXIMUM: dict[str, float] = {
    "logistic": 0.25,
    "tanh": 1.0,
    "hard_logistic": 0.25,
    "hard_tanh": 1.0,
}

# Activations whose units can stop responding: z ≤ 0 on every input puts them on the flat (or, for
# leaky variants, nearly flat) side, so they get (almost) no gradient and stay there.
RELU_FAMILY = frozenset({"relu", "leaky_relu", "prelu", "elu"})


class WeightSnapshot:
    """Reusable copies of every W, taken just before an optimizer step, for ‖ΔW‖."""

    def __init__(self, params: Sequence[dict[str, Array]]) -> None:
        self.weights = [np.empty_like(layer["W"]) for layer in params]

    def take(self, params: Sequence[dict[str, Array]]) -> WeightSnapshot:
        for copy, layer in zip(self.weights, params, strict=True):
            np.copyto(copy, layer["W"])
        return self


def layer_diagnostics(network: Any, snapshot: WeightSnapshot | None = None) -> list[dict[str, Any]]:
    """One dict per layer (layer numbered from 1) for the batch last passed to loss_and_gradients.

    `network` is an `engine.network.Network`; `snapshot` holds the weights before the last step.
    """
    n_layers = len(network.layers)
    rows = []
    for index, layer in enumerate(network.layers):
        layer_spec = network.spec.layers[index]
        name = "maxout" if isinstance(layer_spec, MaxoutLayer) else layer_spec.activation.name
        hidden = index < n_layers - 1
        before = None if snapshot is None else snapshot.weights[index]
        row = {
            "layer": index + 1,
            "activation": name,
            **gradient_stats(layer.grads, layer.delta),
            **_weight_stats(layer.params, before),
            **_activation_stats(name, layer, hidden),
            "duplicate_fraction": _duplicate_fraction(layer.params) if hidden else None,
        }
        rows.append({key: _finite_or_none(value) for key, value in row.items()})
    return rows


def _finite_or_none(value: Any) -> Any:
    """NaN/Inf become None, so every row serialises as strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _norm(array: Array) -> float:
    """‖array‖ (Frobenius) as a Python float, without copying a transposed W (squared_norm)."""
    return math.sqrt(squared_norm(array))


def gradient_stats(grads: dict[str, Array], delta: Array) -> dict[str, Any]:
    """grad_norm_w, grad_norm_b and mean_abs_delta of one layer (also engine.gradients' report).

    Norms accumulate in the arrays' dtype (BLAS dot), the mean of |δ| in float64; with no rows
    mean_abs_delta is None (not applicable), like every statistic over an empty batch here.
    """
    return {
        "grad_norm_w": _norm(grads["W"]),
        "grad_norm_b": _norm(grads["b"]),
        "mean_abs_delta": float(np.abs(delta).mean(dtype=np.float64)) if delta.size else None,
    }


def _weight_stats(params: dict[str, Array], before: Array | None) -> dict[str, Any]:
    weight_norm = _norm(params["W"])
    ratio = None
    if before is not None:
        before_norm = _norm(before)
        if before_norm > 0.0:
            # the snapshot is overwritten by the next take(), so the difference can live in it
            ratio = _norm(np.subtract(params["W"], before, out=before)) / before_norm
    return {"weight_norm": weight_norm, "update_ratio": ratio}


def _activation_stats(name: str, layer: Any, hidden: bool) -> dict[str, Any]:
    z, a = layer.z, layer.a
    if a.size == 0:
        return {"activation_mean": None, "activation_std": None,
                "saturated_fraction": None, "dead_fraction": None}
    return {
        "activation_mean": float(a.mean(dtype=np.float64)),
        "activation_std": float(a.std(dtype=np.float64)),
        "saturated_fraction": _saturated_fraction(name, layer) if hidden else None,
        "dead_fraction": _dead_fraction(z) if hidden and name in RELU_FAMILY else None,
    }


def _saturated_fraction(name: str, layer: Any) -> float | None:
    """Share of entries with f′(z) < SATURATION_DERIVATIVE_RATIO · max f′ (a Dense layer's own f′).

    Only the DERIVATIVE_MAXIMUM activations count: their f′ flattens out on both sides.
    """
    if name not in DERIVATIVE_MAXIMUM:
        return None  # maxout layers, which have no activation object, end here too
    slope = layer.activation.derivative(layer.z, layer.a)
    flat = slope < SATURATION_DERIVATIVE_RATIO * DERIVATIVE_MAXIMUM[name]
    return float(np.count_nonzero(flat) / flat.size)


def _dead_fraction(z: Array) -> float:
    """Share of units whose z ≤ 0 on every row of the batch."""
    never_active = np.max(z, axis=0) <= 0
    return float(np.count_nonzero(never_active) / never_active.size)


def _duplicate_fraction(params: dict[str, Array]) -> float:
    """1 − (distinct units / units), a unit being its incoming weights, bias and own parameters."""
    W = params["W"]
    units = int(W.shape[0])
    columns = [W.reshape(units, -1), params["b"].reshape(units, -1)]
    columns += [params[k].reshape(units, 1) for k in sorted(params) if k not in ("W", "b")]
    unit_rows = np.concatenate(columns, axis=1)
    # Sort by a few columns (cheap, unlike np.unique over whole rows), then compare neighbours in
    # full: identical units end up adjacent unless distinct units tie on every sorted column.
    keys = unit_rows[:, -_SORT_COLUMNS:].T
    ordered = unit_rows[np.lexsort(keys)]
    repeats = np.all(ordered[1:] == ordered[:-1], axis=1)
    return int(np.count_nonzero(repeats)) / units


_SORT_COLUMNS = 8  # bias, learned parameters and the last incoming weights
