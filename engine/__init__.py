"""feedforward's engine: feedforward neural networks in vectorized NumPy (lecture 4).

A pure library — NumPy, SciPy's special functions and pydantic; never the web service. Typical use:

    import engine
    spec = engine.TrainingSpec.model_validate({
        "network": {"layers": [{"units": 64, "activation": "tanh"},
                               {"units": 10, "activation": "softmax"}]},
        "optimizer": {"name": "sgd", "learning_rate": 0.1}, "epochs": 20, "seed": 0,
    })
    result = engine.train(spec, X, y, task="classification", validation=0.2,
                          on_epoch=lambda report: print(report.metrics()))
    model = result.model                        # best weights + the input standardisation
    model.predict(X_new)                        # class indices (or values for regression)
    engine.compute_gradients(model, X, y)       # exact ∂L/∂W, ∂L/∂b, δ per layer
    blob = engine.save(model)                   # npz bytes, no pickle
    same = engine.load(blob)
    fresh = engine.build(spec, n_features=64)   # an untrained model, initialised as train would

Errors (engine.errors): EngineError > SpecError, DataError, DivergenceError, SerializationError.
"""

from engine.building import build, load, save
from engine.checkpoint import Checkpoint
from engine.diagnostics import layer_diagnostics
from engine.errors import DataError, DivergenceError, EngineError, SerializationError, SpecError
from engine.findings import FINDING_CODES, findings
from engine.gradients import compute_gradients
from engine.model import Model
from engine.network import Network
from engine.optimizers import make_optimizer
from engine.preprocessing import Standardizer
from engine.schedules import make_schedule
from engine.spec import (
    NetworkSpec,
    OptimizerSpec,
    TrainingSpec,
    check_against_data,
    layer_shapes,
    parameter_count,
)
from engine.training import EpochReport, TrainResult, train

__all__ = [
    "FINDING_CODES",
    "Checkpoint",
    "DataError",
    "DivergenceError",
    "EngineError",
    "EpochReport",
    "Model",
    "Network",
    "NetworkSpec",
    "OptimizerSpec",
    "SerializationError",
    "SpecError",
    "Standardizer",
    "TrainResult",
    "TrainingSpec",
    "build",
    "check_against_data",
    "compute_gradients",
    "findings",
    "layer_diagnostics",
    "layer_shapes",
    "load",
    "make_optimizer",
    "make_schedule",
    "parameter_count",
    "save",
    "train",
]
