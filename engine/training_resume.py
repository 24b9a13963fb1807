"""Putting a training run back into the state a checkpoint recorded.

The run is rebuilt from the spec and the seed first (initialisation and validation split are
deterministic), then the checkpoint overwrites everything that training changed: weights,
optimizer state, the shuffling Generator, early stopping, history and the epoch counter — and,
for a checkpoint taken inside an epoch, where that epoch stood (`EpochProgress`).
"""

from __future__ import annotations

import math
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
        session.resume_progress = _progress(mid_epoch, session, checkpoint.epoch)
        session.last_good = _last_good(checkpoint.last_good, session.last_good)


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


def _progress(saved: Any, session: Any, epochs_done: int) -> EpochProgress:
    """The saved position inside epoch `epochs_done + 1`, checked against this run."""
    try:
        progress = EpochProgress.from_json(saved)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise SerializationError(f"the checkpoint's mid_epoch is malformed: {error}") from error
    n_train, batch_size = int(session.data.train_rows.size), session.spec.batch_size
    fits = (epochs_done < session.spec.epochs
            and 0 < progress.next_start < n_train and progress.next_start % batch_size == 0
            and 0 <= progress.correct <= progress.next_start
            and math.isfinite(progress.total_loss)
            and all(isinstance(row, dict) for row in progress.layers))
    if not fits:
        raise SerializationError("the checkpoint's mid_epoch does not fit this run (position, "
                                 "sums or diagnostics out of range)")
    return progress


def _last_good(saved: dict[str, np.ndarray] | None, current: dict[str, np.ndarray]
               ) -> dict[str, np.ndarray]:
    """The weights at the end of the last whole epoch, shaped like this network's."""
    if saved is None:
        raise SerializationError("a mid-epoch checkpoint lacks its last whole epoch's weights")
    if saved.keys() != current.keys() or any(
            saved[name].shape != current[name].shape for name in current):
        raise SerializationError("the checkpoint's last whole epoch's weights do not fit the "
                                 "network")
    return {name: saved[name].astype(current[name].dtype, copy=True) for name in current}
