"""Request and response bodies of the /v1/models endpoints."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, StrictFloat, StrictInt, StrictStr, model_validator

from service.schemas import ClosedBody, Label, MetricsRow, ResourceId, Task, Timestamp

__all__ = [
    "ClassificationEvaluation",
    "DiagnosticsOut",
    "EpochDiagnostics",
    "EvaluateRequest",
    "Finding",
    "GradientsOut",
    "GradientsRequest",
    "LayerGradients",
    "LayerInfo",
    "ModelOut",
    "PredictRequest",
    "PredictionOut",
    "RegressionEvaluation",
    "WeightsJson",
]

# Strict: "1e2" and true are not numbers here, as in dataset uploads (ints are still floats).
Inputs = list[list[StrictFloat]]
Targets = list[StrictStr | StrictInt | StrictFloat] | list[list[StrictFloat]]
INPUTS_DOC = "Rows of raw features (n_samples, n_features); the model's preprocessing is applied."
TARGETS_DOC = (
    "Class labels as in the dataset, or target values (rows of values for several targets)."
)


class LayerInfo(BaseModel):
    layer: int = Field(description="Layer l maps a⁽ˡ⁻¹⁾ to a⁽ˡ⁾; numbered from 1.")
    type: str = Field(description="dense or maxout")
    units: int
    activation: dict[str, Any] | None = Field(description="The activation spec (dense layers).")
    pieces: int | None = Field(None, description="Linear pieces per unit (maxout layers).")
    shape: list[int] = Field(
        description="The shape of W⁽ˡ⁾: (M_l, M_{l-1}), or (M_l, K, M_{l-1}) for maxout."
    )
    shapes: dict[str, list[int]] = Field(
        description="Parameter array shapes, e.g. W: (M_l, M_{l-1})."
    )


class ModelOut(BaseModel):
    id: str
    job_id: str
    dataset_id: str
    network: dict[str, Any]
    loss: str
    task: Task
    n_features: int
    parameter_count: int = Field(
        description="P = Σ (M_{l-1} + 1)·M_l plus learned activation parameters."
    )
    layers: list[LayerInfo]
    classes: list[Label] | None
    best_epoch: int | None
    metrics: MetricsRow | None = Field(description="Metrics of the epoch whose weights were kept.")
    created_at: Timestamp


class PredictRequest(ClosedBody):
    """Rows as nested lists (`inputs`), or for bulk requests as one base64 `.npy` (`inputs_npy`)."""

    inputs: Inputs | None = Field(None, description=INPUTS_DOC, min_length=1)
    inputs_npy: str | None = Field(
        None,
        min_length=1,
        description="Base64 of a .npy file holding a 2-D float32/float64/int array "
        "(n_samples, n_features) — a third smaller than nested lists for many rows, e.g. "
        "base64.b64encode(buffer) after np.save(buffer, X). Read without pickle.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> PredictRequest:
        if (self.inputs is None) == (self.inputs_npy is None):
            raise ValueError('give exactly one of "inputs" and "inputs_npy"')
        return self


class PredictionOut(BaseModel):
    predictions: list[Any] = Field(
        description="Class labels, or values (a list per row for several targets)."
    )
    probabilities: list[list[float]] | None = Field(
        None, description="Per-row class probabilities in `classes` order (classification)."
    )
    classes: list[Label] | None = None


class EvaluateRequest(ClosedBody):
    """Either a stored dataset or explicit rows with their targets."""

    dataset_id: ResourceId | None = None
    inputs: Inputs | None = Field(None, description=INPUTS_DOC, min_length=1)
    targets: Targets | None = Field(None, description=TARGETS_DOC, min_length=1)

    @model_validator(mode="after")
    def _one_source(self) -> EvaluateRequest:
        has_rows = self.inputs is not None or self.targets is not None
        if (
            (self.dataset_id is None) == (not has_rows)
            or has_rows
            and None in (self.inputs, self.targets)
        ):
            raise ValueError('give either "dataset_id" or both "inputs" and "targets"')
        return self


class ClassificationEvaluation(BaseModel):
    n_samples: int
    loss: float = Field(description="Mean cross-entropy (without the L2 term).")
    accuracy: float
    classes: list[Label]
    confusion_matrix: list[list[int]] = Field(
        description="Rows: true class; columns: predicted; `classes` order."
    )


class RegressionEvaluation(BaseModel):
    n_samples: int
    loss: float = Field(description="Mean over rows of ½‖ŷ − y‖² (without the L2 term).")
    mse: float
    mae: float
    r2: float | None = Field(
        description="Coefficient of determination, averaged over targets; null if y is constant."
    )


class GradientsRequest(ClosedBody):
    inputs: Inputs = Field(description=INPUTS_DOC, min_length=1)
    targets: Targets = Field(description=TARGETS_DOC, min_length=1)
    full: bool = Field(False, description="Also return the arrays dW, db and delta.")
    include_l2: bool = Field(False, description="Add λW to dW (the training objective's gradient).")


class LayerGradients(BaseModel):
    """The training diagnostics' statistics of layer l on the given rows, and its arrays."""

    layer: int
    activation: str = Field(examples=["relu"], description="The layer's activation, or maxout.")
    grad_norm_w: float | None = Field(description="‖∂L/∂W⁽ˡ⁾‖_F (null if not finite).")
    grad_norm_b: float | None
    mean_abs_delta: float | None
    weight_norm: float | None = Field(description="‖W⁽ˡ⁾‖_F.")
    activation_mean: float | None
    activation_std: float | None
    saturated_fraction: float | None = Field(
        description="Share of a⁽ˡ⁾ entries on a flat part (logistic, tanh, hard-*; else null).")
    dead_fraction: float | None = Field(
        description="Share of ReLU-family units inactive on every row (else null).")
    duplicate_fraction: float | None = Field(
        description="Share of hidden units identical to another one (null for the output).")
    dW: list[Any] | None = Field(None, description="∂L/∂W⁽ˡ⁾, in the orientation of W.")
    db: list[Any] | None = None
    delta: list[Any] | None = Field(None, description="∂L/∂z⁽ˡ⁾ per row (carries the 1/N factor).")
    dgamma: list[float] | None = None
    dbeta: list[float] | None = None


class Finding(BaseModel):
    code: str = Field(examples=["vanishing_gradient"])
    severity: str
    layer: int | None
    message: str = Field(description="What was measured and what to try.")


class GradientsOut(BaseModel):
    loss: float
    layers: list[LayerGradients]
    findings: list[Finding] = Field(
        description="What these rows show: vanishing or exploding gradients, dead, saturated "
        "or symmetric units.")


class EpochDiagnostics(BaseModel):
    epoch: int
    layers: list[dict[str, Any]] = Field(
        description="Per layer: layer, grad_norm_w, grad_norm_b, mean_abs_delta, weight_norm, "
        "update_ratio, activation_mean, activation_std, saturated_fraction, dead_fraction."
    )


class DiagnosticsOut(BaseModel):
    model_id: str
    epochs: list[EpochDiagnostics]
    findings: list[Finding]


class WeightsJson(BaseModel):
    model_id: str
    arrays: dict[str, list[Any]] = Field(
        description="W1, b1, …, gamma{l}, beta{l}, mean, scale as nested lists (z = W a + b)."
    )
    shapes: dict[str, list[int]]
