"""The pure function a worker runs: plain data in, an epoch report per epoch out, plain data back.

Reports: one per epoch (metrics, diagnostics, findings, checkpoint bytes), and inside an epoch
longer than CHECKPOINT_SECONDS a `partial` one that carries only a checkpoint.

It imports only numpy and the engine — no database, no web framework — so the same function runs in
a local worker process and on a Dask worker. Every float it emits is finite or None, so reports and
results serialise as strict JSON.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from engine.errors import EngineError
from engine.spec import TrainingSpec
from engine.training import EpochReport, TrainResult, train

__all__ = ["failure", "finite_or_none", "in_run_dtype", "job_arrays", "run_dtype", "run_job"]

logger = logging.getLogger(__name__)

Report = Callable[[dict[str, Any]], None]
# An epoch longer than this is also checkpointed inside (a `partial` report with no metrics), so
# a killed worker loses at most this much training (RELIABILITY D3).
CHECKPOINT_SECONDS = 30.0


def finite_or_none(value: Any) -> Any:
    """Recursively replace NaN/±Inf by None and numpy scalars by Python numbers (strict JSON)."""
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def epoch_to_dict(report: EpochReport) -> dict[str, Any]:
    """An EpochReport as plain data: metrics row, layer diagnostics, findings, checkpoint bytes."""
    return {
        "epoch": report.epoch,
        "metrics": finite_or_none(report.metrics()),
        "layers": finite_or_none(list(report.layers)),
        "findings": finite_or_none(list(report.findings)),
        "checkpoint": report.checkpoint,
    }


def failure(reason: str, error: str) -> dict[str, Any]:
    """A run that ended without a model: `reason` is a Job.failure_reason, `error` what to do."""
    return {"status": "failed", "failure_reason": reason, "error": error, "stop_reason": None,
            "best_epoch": None, "findings": [], "metrics": None, "model": None}


def _final_metrics(result: TrainResult) -> dict[str, Any] | None:
    """The metrics row of the weights we keep: the best epoch when early stopping restored it."""
    rows = result.history
    if not rows:
        return None
    chosen = [row for row in rows if row.get("epoch") == result.best_epoch]
    final: dict[str, Any] = finite_or_none(dict(chosen[0] if chosen else rows[-1]))
    return final


def result_to_dict(result: TrainResult) -> dict[str, Any]:
    """A TrainResult as plain data. Diverged and cancelled runs carry no model."""
    outcome = {
        "stop_reason": result.stop_reason,
        "best_epoch": result.best_epoch,
        "findings": finite_or_none(list(result.findings)),
        "metrics": _final_metrics(result),
        "failure_reason": None,
        "error": None,
        "model": None,
    }
    if result.stop_reason == "diverged":
        message = result.error or "training diverged (the loss became NaN or infinite)"
        return {**outcome, "status": "failed", "failure_reason": "diverged", "error": message}
    if result.stop_reason == "cancelled":
        return {**outcome, "status": "cancelled"}
    return {**outcome, "status": "succeeded", "model": result.model.to_bytes()}


def _validation(
    payload: dict[str, Any], arrays: dict[str, np.ndarray]
) -> float | tuple[np.ndarray, np.ndarray] | None:
    if "X_val" in arrays:
        return arrays["X_val"], arrays["y_val"]
    split = payload.get("validation_split")
    return float(split) if split else None


def _train(
    payload: dict[str, Any], arrays: dict[str, np.ndarray], report: Report,
    should_stop: Callable[[], bool],
) -> TrainResult:
    return train(
        TrainingSpec.model_validate(payload["spec"]),
        arrays["X"],
        arrays["y"],
        task=payload["task"],
        n_classes=payload.get("n_classes"),
        validation=_validation(payload, arrays),
        on_epoch=lambda epoch_report: report(epoch_to_dict(epoch_report)),
        should_stop=should_stop,
        resume_from=payload.get("resume_from"),
        checkpoint_every=1,
        metadata=payload.get("metadata") or {},
        on_checkpoint=lambda epochs_done, checkpoint: report(
            {"epoch": epochs_done, "partial": True, "checkpoint": checkpoint}),
        checkpoint_seconds=CHECKPOINT_SECONDS,
    )


def run_dtype(spec: Mapping[str, Any]) -> str:
    """The float dtype a job trains in ("float32" unless its spec says otherwise)."""
    return str(spec.get("dtype") or TrainingSpec.model_fields["dtype"].default)


def in_run_dtype(decoded: Mapping[str, np.ndarray], dtype: str) -> dict[str, np.ndarray]:
    """A decoded dataset ({"X", "y"}) with X and float targets already in the run's dtype.

    Workers keep datasets in this form: train() then uses them without a copy. Casting a
    60,000 × 784 float64 X on every job took 0.2–0.6 s before epoch 1 (longer right after another
    job, whose freed copy the allocator had handed back to the kernel). Anything non-numeric is
    left for train() to refuse with its own message.
    """
    arrays = dict(decoded)
    for name, kinds in (("X", "biuf"), ("y", "f")):  # X: the kinds train() accepts as inputs
        if arrays[name].dtype.kind in kinds:
            arrays[name] = np.ascontiguousarray(arrays[name], dtype=dtype)
    return arrays


def job_arrays(
    datasets: dict[str, str], decoded: Mapping[str, Mapping[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """run_job's arrays — X, y (and X_val, y_val) — from the job's role → sha256 map and the
    decoded datasets ({"X", "y"}) by sha256."""
    train = decoded[datasets["train"]]
    arrays = {"X": train["X"], "y": train["y"]}
    if "validation" in datasets:
        validation = decoded[datasets["validation"]]
        arrays |= {"X_val": validation["X"], "y_val": validation["y"]}
    return arrays


def run_job(
    payload: dict[str, Any],
    arrays: dict[str, np.ndarray],
    report: Report,
    should_stop: Callable[[], bool],
) -> dict[str, Any]:
    """Train one job attempt.

    payload: {"job_id", "spec" (TrainingSpec fields), "task", "n_classes", "validation_split",
    "metadata", "resume_from" (checkpoint bytes or None)}; arrays: "X", "y" and optionally "X_val",
    "y_val". `report` receives one dict per epoch (see epoch_to_dict); `should_stop` is checked
    between mini-batches. Returns {"status": succeeded|cancelled|failed, "stop_reason",
    "best_epoch", "findings", "metrics", "failure_reason", "error", "model": npz bytes or None}.
    """
    try:
        result = _train(payload, arrays, report, should_stop)
    except MemoryError:
        return failure(
            "resource_exhausted",
            "the job ran out of memory in its worker; use a smaller batch_size or network",
        )
    except EngineError as exc:
        return failure("error", str(exc))
    return result_to_dict(result)
