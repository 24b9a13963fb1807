"""Building an untrained model from a spec, and saving and loading models as bytes."""

from __future__ import annotations

import numpy as np

from engine.model import Model, Task
from engine.network import Network
from engine.spec import TrainingSpec, resolve_loss

__all__ = ["build", "draw_seed", "load", "save", "seed_streams"]


def draw_seed() -> int:
    """A fresh seed from OS entropy (callers record it, so the run can be repeated)."""
    return int(np.random.default_rng().integers(2**63 - 1))


def seed_streams(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent Generators for (weight initialisation, validation split, per-epoch shuffles)."""
    init, split, shuffle = np.random.SeedSequence(seed).spawn(3)
    return np.random.default_rng(init), np.random.default_rng(split), np.random.default_rng(shuffle)


def build(spec: TrainingSpec, n_features: int, *, task: Task = "classification",
          seed: int | None = None) -> Model:
    """A model with freshly initialised weights (spec.init) and no standardisation.

    The seed is `seed`, else `spec.seed`, else drawn from OS entropy; it is kept in the metadata.
    """
    if seed is None:
        seed = spec.seed if spec.seed is not None else draw_seed()
    init_rng, _, _ = seed_streams(seed)  # the same initial weights `train` starts from
    network = Network.from_spec(spec.network, n_features, loss=resolve_loss(spec, task),
                                dtype=spec.dtype, rng=init_rng)
    return Model(network, None, task, {"seed": seed, "l2": spec.l2})


def save(model: Model) -> bytes:
    """The model as npz bytes (weights, standardisation, spec JSON; loadable without pickle)."""
    return model.to_bytes()


def load(data: bytes) -> Model:
    """A model from `save` bytes; SerializationError for anything else."""
    return Model.from_bytes(data)
