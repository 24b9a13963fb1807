"""Resumable training state as bytes: an npz of arrays plus one JSON member, no pickle.

Members:
    weights/<name>      the network's parameters after the checkpoint's epoch (W1, b1, …)
    optimizer/<name>    the optimizer's state arrays (velocity.W1, m.W1, …, t)
    best/<name>         the best weights so far (present when validation is used)
    last_good/<name>    mid-epoch checkpoints only: the weights at the end of the last whole
                        epoch (what a divergence later in the epoch falls back to)
    mean, scale         the standardizer fitted on the training split (present when standardizing)
    state.json          uint8 UTF-8 JSON: format, version, epoch, seed, the shuffling Generator's
                        `bit_generator.state`, early-stopping state, history rows, the latest
                        diagnosed layers, the spec and the data shape it was trained on; a
                        mid-epoch checkpoint also has `mid_epoch` (engine.epoch.EpochProgress)
                        and the Generator's state from before that epoch's shuffle
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.errors import SerializationError

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "Checkpoint"]

CHECKPOINT_FORMAT = "feedforward-checkpoint"
CHECKPOINT_VERSION = 1
_STATE_MEMBER = "state.json"
_GROUPS = ("weights", "optimizer", "best", "last_good")


@dataclass
class Checkpoint:
    """Everything `train` needs to continue after `epoch` (or, with `state["mid_epoch"]`, from
    inside epoch + 1) exactly as if it had never stopped."""

    epoch: int
    seed: int
    weights: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray]
    rng_state: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)  # early stopping, history, diagnostics…
    best_weights: dict[str, np.ndarray] | None = None
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    last_good: dict[str, np.ndarray] | None = None

    def to_bytes(self) -> bytes:
        arrays: dict[str, np.ndarray] = {"weights/" + k: v for k, v in self.weights.items()}
        arrays.update({"optimizer/" + k: v for k, v in self.optimizer.items()})
        if self.best_weights is not None:
            arrays.update({"best/" + k: v for k, v in self.best_weights.items()})
        if self.last_good is not None:
            arrays.update({"last_good/" + k: v for k, v in self.last_good.items()})
        if self.mean is not None and self.scale is not None:
            arrays["mean"], arrays["scale"] = self.mean, self.scale
        header = {
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "epoch": self.epoch,
            "seed": self.seed, "rng_state": self.rng_state, "state": self.state,
        }
        text = json.dumps(header, allow_nan=False, separators=(",", ":"))
        arrays[_STATE_MEMBER] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)  # type: ignore[arg-type]
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint:
        """Parse bytes written by `to_bytes`; SerializationError for anything else."""
        arrays = _load_arrays(data)
        header = _parse_header(arrays.pop(_STATE_MEMBER, None))
        groups: dict[str, dict[str, np.ndarray]] = {group: {} for group in _GROUPS}
        for name, array in arrays.items():
            group, _, key = name.partition("/")
            if group in groups and key:
                groups[group][key] = array
            elif name not in ("mean", "scale"):
                raise SerializationError(f"unexpected member {name!r} in checkpoint")
        if not groups["weights"]:
            raise SerializationError("checkpoint holds no weights")
        return cls(
            epoch=int(header["epoch"]), seed=int(header["seed"]), weights=groups["weights"],
            optimizer=groups["optimizer"], rng_state=header["rng_state"],
            state=header.get("state", {}), best_weights=groups["best"] or None,
            mean=arrays.get("mean"), scale=arrays.get("scale"),
            last_good=groups["last_good"] or None,
        )


def _load_arrays(data: bytes) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise SerializationError(f"not a training checkpoint: {error}") from error


def _parse_header(member: np.ndarray | None) -> dict[str, Any]:
    if member is None or member.dtype != np.uint8 or member.ndim != 1:
        raise SerializationError(f"not a training checkpoint: no {_STATE_MEMBER} member")
    try:
        header = json.loads(member.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        message = f"checkpoint {_STATE_MEMBER} is not valid JSON: {error}"
        raise SerializationError(message) from error
    if not isinstance(header, dict) or header.get("format") != CHECKPOINT_FORMAT:
        raise SerializationError("not a training checkpoint: wrong format tag")
    if header.get("version") != CHECKPOINT_VERSION:
        raise SerializationError(
            f"checkpoint version {header.get('version')!r} is not supported "
            f"(this engine reads version {CHECKPOINT_VERSION})"
        )
    missing = [k for k in ("epoch", "seed", "rng_state") if k not in header]
    if missing:
        raise SerializationError(f"checkpoint {_STATE_MEMBER} lacks {missing}")
    return header
