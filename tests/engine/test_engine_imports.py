"""The engine is a pure library: importing it never pulls in the web service or its stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import engine

FORBIDDEN = ("fastapi", "sqlalchemy", "starlette", "service", "httpx", "uvicorn", "alembic")
ROOT = Path(__file__).resolve().parents[2]


def test_import_engine_does_not_import_the_service_stack() -> None:
    probe = (
        "import json, sys\n"
        "import engine, engine.training, engine.diagnostics, engine.findings\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True,
        timeout=120,
    )
    assert json.loads(completed.stdout) == []


def test_every_public_name_exists() -> None:
    assert len(engine.__all__) == len(set(engine.__all__))
    missing = [name for name in engine.__all__ if not hasattr(engine, name)]
    assert missing == []


def test_the_documented_entry_points_are_public() -> None:
    for name in ("TrainingSpec", "train", "build", "save", "load", "compute_gradients", "Model",
                 "parameter_count", "EpochReport", "TrainResult"):
        assert name in engine.__all__, name


def test_the_readme_flow_runs_end_to_end() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 4))
    y = (X[:, 0] > 0).astype(np.int64)
    spec = engine.TrainingSpec.model_validate({
        "network": {"layers": [{"units": 8, "activation": "tanh"},
                               {"units": 2, "activation": "softmax"}]},
        "optimizer": {"name": "sgd", "learning_rate": 0.1}, "epochs": 3, "seed": 0,
    })
    result = engine.train(spec, X, y, task="classification", validation=0.2)
    same = engine.load(engine.save(result.model))
    assert np.array_equal(same.predict(X), result.model.predict(X))
    gradients = engine.compute_gradients(result.model, X[:16], y[:16])
    assert [layer["layer"] for layer in gradients["layers"]] == [1, 2]
    fresh = engine.build(spec, n_features=4)
    assert fresh.metadata["seed"] == 0
    assert engine.parameter_count(spec.network, 4) == fresh.network.parameter_count() == 58
