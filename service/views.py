"""Database rows → response bodies. Every float leaving the API is finite or null (strict JSON)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.spec import DenseLayer, NetworkSpec, layer_shapes
from service.model_schemas import DiagnosticsOut, EpochDiagnostics, Finding, LayerInfo, ModelOut
from service.models import Dataset, EpochRecord, Job, Model
from service.schemas import DatasetOut, JobOut, MetricsRow

__all__ = [
    "dataset_out",
    "diagnostics_out",
    "finite_json",
    "finite_list",
    "job_out",
    "layer_infos",
    "metrics_out",
    "metrics_row",
    "model_out",
]

METRIC_FIELDS = (
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
    "seconds",
)


def finite_list(array: np.ndarray) -> Any:
    """array.tolist() with NaN and ±Inf as None; the per-element walk only when one is there."""
    values = array.tolist()
    return values if np.isfinite(array).all() else finite_json(values)


def finite_json(value: Any) -> Any:
    """A copy of JSON-like data with NaN and ±Inf replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(item) for item in value]
    return value


def dataset_out(dataset: Dataset) -> DatasetOut:
    return DatasetOut(
        id=dataset.id,
        name=dataset.name,
        task=dataset.task,
        n_samples=dataset.n_samples,
        n_features=dataset.n_features,
        n_targets=dataset.n_targets,
        feature_names=dataset.feature_names,
        target_name=dataset.target_name,
        classes=dataset.classes,
        sha256=dataset.sha256 or "",
        created_at=dataset.created_at,
    )


def metrics_row(record: EpochRecord) -> MetricsRow:
    values = {name: finite_json(getattr(record, name)) for name in METRIC_FIELDS}
    return MetricsRow(epoch=record.epoch, **values)


def metrics_out(data: dict[str, Any] | None) -> MetricsRow | None:
    """A stored metrics dict (a job's latest, a model's best) as a row; None when there is none."""
    return MetricsRow.model_validate(finite_json(data)) if data else None


def job_out(job: Job, model_id: str | None) -> JobOut:
    return JobOut(
        id=job.id,
        status=job.status,
        dataset_id=job.dataset_id,
        validation_dataset_id=job.validation_dataset_id,
        epoch=job.epoch,
        epochs=job.epochs,
        metrics=metrics_out(job.metrics),
        error=job.error,
        failure_reason=job.failure_reason,
        stop_reason=job.stop_reason,
        cancel_requested=job.cancel_requested,
        attempt=job.attempt,
        model_id=model_id,
        sweep_id=job.sweep_id,
        spec=job.spec,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def layer_infos(network: dict[str, Any], n_features: int) -> list[LayerInfo]:
    spec = NetworkSpec.model_validate(network)
    infos = []
    for index, (layer, shapes) in enumerate(
        zip(spec.layers, layer_shapes(spec, n_features), strict=True)
    ):
        activation = layer.activation.model_dump() if isinstance(layer, DenseLayer) else None
        infos.append(
            LayerInfo(
                layer=index + 1,
                type=layer.type,
                units=layer.units,
                activation=activation,
                pieces=getattr(layer, "pieces", None),
                shape=list(shapes["W"]),
                shapes={name: list(shape) for name, shape in shapes.items()},
            )
        )
    return infos


def diagnostics_out(model: Model, records: Sequence[EpochRecord]) -> DiagnosticsOut:
    epochs = [EpochDiagnostics(epoch=r.epoch, layers=finite_json(r.layers or [])) for r in records]
    findings = [Finding.model_validate(f) for f in finite_json(model.findings or [])]
    return DiagnosticsOut(model_id=model.id, epochs=epochs, findings=findings)


def model_out(model: Model) -> ModelOut:
    return ModelOut(
        id=model.id,
        job_id=model.job_id,
        dataset_id=model.dataset_id,
        network=model.network,
        loss=model.loss,
        task=model.task,
        n_features=model.n_features,
        parameter_count=model.parameter_count,
        layers=layer_infos(model.network, model.n_features),
        classes=model.classes,
        best_epoch=model.best_epoch,
        metrics=metrics_out(model.metrics),
        created_at=model.created_at,
    )
