"""task.run_job: the pure function every executor runs, on the real engine with tiny specs."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from engine.model import Model
from service.jobs import task
from service.jobs.task import finite_or_none, run_job


def _blobs(n_per_class: int = 30, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = np.array([[-3.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    X = np.concatenate([c + rng.standard_normal((n_per_class, 2)) for c in centers])
    y = np.repeat(np.arange(3, dtype=np.int64), n_per_class)
    return {"X": X, "y": y}


def _payload(epochs: int = 4, **spec: Any) -> dict[str, Any]:
    return {
        "job_id": "job-1",
        "attempt": 1,
        "spec": {
            "network": {"layers": [{"units": 8, "activation": "tanh"},
                                   {"units": 3, "activation": "softmax"}]},
            "optimizer": {"name": "sgd", "learning_rate": 0.1},
            "batch_size": 16, "epochs": epochs, "seed": 3,
        } | spec,
        "task": "classification",
        "n_classes": 3,
        "validation_split": 0.2,
        "metadata": {"classes": ["a", "b", "c"]},
        "resume_from": None,
    }


def _run(payload: dict[str, Any], arrays: dict[str, np.ndarray], stop_after: int | None = None):
    reports: list[dict[str, Any]] = []

    def should_stop() -> bool:
        return stop_after is not None and len(reports) >= stop_after

    result = run_job(payload, arrays, reports.append, should_stop)
    return result, reports


def _weights(model_bytes: bytes) -> dict[str, np.ndarray]:
    return Model.from_bytes(model_bytes).network.get_weights()


def test_run_job_reports_every_epoch_as_strict_json_with_a_checkpoint():
    result, reports = _run(_payload(epochs=3), _blobs())

    assert [r["epoch"] for r in reports] == [1, 2, 3]
    for report in reports:
        assert isinstance(report["checkpoint"], bytes) and report["checkpoint"]
        plain = {key: value for key, value in report.items() if key != "checkpoint"}
        json.dumps(plain, allow_nan=False)
        assert report["metrics"]["epoch"] == report["epoch"]
        assert math.isfinite(report["metrics"]["val_loss"]) and report["metrics"]["val_loss"] > 0
        assert [layer["layer"] for layer in report["layers"]] == [1, 2]
    assert result["status"] == "succeeded" and result["stop_reason"] == "max_epochs"
    assert result["metrics"]["epoch"] == 3
    model = Model.from_bytes(result["model"])
    assert model.predict(_blobs()["X"]).shape == (90,)


def test_run_job_returns_cancelled_without_a_model_when_asked_to_stop():
    result, reports = _run(_payload(epochs=50), _blobs(), stop_after=2)
    assert result["status"] == "cancelled" and result["model"] is None
    assert len(reports) == 2


def test_a_run_resumed_from_a_checkpoint_ends_with_identical_weights():
    arrays = _blobs()
    whole, reports = _run(_payload(epochs=5), arrays)
    resumed, later = _run(_payload(epochs=5) | {"resume_from": reports[1]["checkpoint"]}, arrays)

    assert [r["epoch"] for r in later] == [3, 4, 5]
    expected, actual = _weights(whole["model"]), _weights(resumed["model"])
    assert expected.keys() == actual.keys()
    for name in expected:
        assert np.array_equal(expected[name], actual[name]), name


def test_a_long_epoch_is_checkpointed_inside_and_resumes_from_there(monkeypatch):
    monkeypatch.setattr(task, "CHECKPOINT_SECONDS", 0.0)  # every epoch is "long"
    arrays = _blobs()  # 72 training rows in batches of 16: 5 batches, 4 gaps between them
    whole, reports = _run(_payload(epochs=3), arrays)
    partial = [r for r in reports if r.get("partial")]
    assert [r["epoch"] for r in reports if not r.get("partial")] == [1, 2, 3]
    assert [r["epoch"] for r in partial] == [0] * 4 + [1] * 4 + [2] * 4  # whole epochs before
    assert all(set(r) == {"epoch", "partial", "checkpoint"} and r["checkpoint"] for r in partial)

    resumed, later = _run(_payload(epochs=3) | {"resume_from": partial[5]["checkpoint"]}, arrays)
    assert [r["epoch"] for r in later if not r.get("partial")] == [2, 3]
    expected, actual = _weights(whole["model"]), _weights(resumed["model"])
    assert all(np.array_equal(expected[name], actual[name]) for name in expected)


def test_divergence_fails_the_run_with_an_actionable_message():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3))
    y = (X @ np.array([1e3, -2e3, 5e2]))[:, None]
    payload = _payload(epochs=20, standardize=True,
                       network={"layers": [{"units": 8, "activation": "relu"},
                                           {"units": 1, "activation": "identity"}]},
                       optimizer={"name": "sgd", "learning_rate": 900.0}, loss="mse")
    payload |= {"task": "regression", "n_classes": None, "validation_split": None}

    result, reports = _run(payload, {"X": X, "y": y})

    assert result["status"] == "failed" and result["failure_reason"] == "diverged"
    assert "epoch" in result["error"] and "learning rate" in result["error"]
    assert result["model"] is None
    json.dumps([{k: v for k, v in r.items() if k != "checkpoint"} for r in reports],
               allow_nan=False)


def test_a_given_validation_set_is_used():
    train, validation = _blobs(seed=1), _blobs(n_per_class=5, seed=2)
    arrays = train | {"X_val": validation["X"], "y_val": validation["y"]}
    result, reports = _run(_payload(epochs=2) | {"validation_split": None}, arrays)
    assert result["status"] == "succeeded"
    model = Model.from_bytes(result["model"])
    expected = float(np.mean(model.predict(validation["X"]) == validation["y"]))
    assert reports[-1]["metrics"]["val_accuracy"] == pytest.approx(expected)


def test_bad_data_fails_with_the_engines_message_instead_of_raising():
    arrays = {"X": np.zeros((10, 2)), "y": np.zeros(9, dtype=np.int64)}
    result, _ = _run(_payload(), arrays)
    assert result["status"] == "failed" and result["failure_reason"] == "error"
    assert "has 9 rows but the inputs have 10" in result["error"]


def test_finite_or_none_makes_nested_values_strict_json():
    value = {"a": float("nan"), "b": [1.0, float("inf"), np.float32(2.5)], "c": (np.int64(3),)}
    assert finite_or_none(value) == {"a": None, "b": [1.0, None, 2.5], "c": [3]}


def test_the_task_module_imports_no_database_or_web_code():
    code = ("import sys, service.jobs.task; "
            "bad = [m for m in ('sqlalchemy', 'fastapi', 'starlette', 'httpx', 'service.db') "
            "if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("module", ["service.jobs.worker_boot"])
def test_the_worker_entry_module_imports_no_numpy_before_pinning_threads(module):
    code = f"import sys, {module}; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
