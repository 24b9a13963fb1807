"""Putting a training run back into the state a checkpoint recorded.

The run is rebuilt from the spec and the seed first (initialisation and validation split are
deterministic), then the checkpoint overwrites everything that training changed: weights,
optimizer state, the shuffling Generator, early stopping, history and the epoch counter — and,
for a checkpoint taken inside an epoch, where that epoch stood (`EpochProgress`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.checkpoint import Checkpoint
from engine.epoch import EpochProgress
from engine.errors import SerializationError

__all__ = ["restore_run"]


def restore_run(session: Any, checkpoint: Checkpoint) -> None:
    """Load `checkpoint` into a freshly built `engine.training._Session`."""
    _check_identity(session.run_identity, checkpoint.state.get("run"))
    _check_standardizer(session.standardizer, checkpoint)
    try:
        session.network.set_weights(checkpoint.weights)
        session.optimizer.load_state_arrays(checkpoint.optimizer)
        session.shuffle_rng.bit_generator.state = checkpoint.rng_state
    except (ValueError, TypeError, KeyError) as error:
        raise SerializationError(f"the checkpoint does not fit this run: {error}") from error
    session.stopping.load(checkpoint.state.get("early_stopping", {}), checkpoint.best_weights)
    session.history = list(checkpoint.state.get("history", []))
    session.latest_layers = list(checkpoint.state.get("latest_layers", []))
    session.epoch = checkpoint.epoch
    session.last_good = session.network.get_weights()
    mid_epoch = checkpoint.state.get("mid_epoch")
    if mid_epoch is not None:  # inside epoch + 1: the Generator is at that epoch's shuffle
        if checkpoint.last_good is None:
            raise SerializationError("a mid-epoch checkpoint lacks its last whole epoch's weights")
        try:
            session.resume_progress = EpochProgress.from_json(mid_epoch)
        except (KeyError, TypeError, ValueError) as error:
            raise SerializationError(f"the checkpoint's mid_epoch is malformed: {error}") from error
        session.last_good = {name: array.copy() for name, array in checkpoint.last_good.items()}


def _check_identity(current: dict[str, Any], saved: Any) -> None:
    if isinstance(saved, dict) and "data" not in saved:  # written before runs kept a data digest
        current = {key: value for key, value in current.items() if key != "data"}
    if saved != current:
        raise SerializationError(
            "the checkpoint belongs to a different run (spec, task, data shape or data differ); "
            "resume with the same spec and data, or start a new run"
        )


def _check_standardizer(standardizer: Any, checkpoint: Checkpoint) -> None:
    """The standardizer refitted from the same rows must equal the saved one, bit for bit."""
    if standardizer is None:
        if checkpoint.mean is not None:
            raise SerializationError("the checkpoint has a standardizer but this run has none")
        return
    if checkpoint.mean is None or checkpoint.scale is None:
        raise SerializationError("the checkpoint lacks the standardizer this run needs")
    if not (np.array_equal(standardizer.mean, checkpoint.mean)
            and np.array_equal(standardizer.scale, checkpoint.scale)):
        raise SerializationError("the data differ from the checkpoint's: the input means and "
                                 "scales do not match; resume with the same data")
