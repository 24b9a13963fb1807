"""The checkpoint format: npz arrays plus a JSON member, exact round trip, no pickle accepted."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from engine.checkpoint import Checkpoint
from engine.errors import SerializationError


def _checkpoint() -> Checkpoint:
    rng = np.random.default_rng(3)
    generator = np.random.default_rng(42)
    generator.standard_normal(5)  # advance, so the state is not the initial one
    return Checkpoint(
        epoch=4, seed=2**62 + 5,
        weights={"W1": rng.standard_normal((3, 2)).astype(np.float32),
                 "b1": np.zeros(3, dtype=np.float32)},
        optimizer={"velocity.W1": rng.standard_normal((3, 2)).astype(np.float32),
                   "t": np.array(17, dtype=np.int64)},
        rng_state=generator.bit_generator.state,
        state={"early_stopping": {"best_loss": 0.25, "best_epoch": 3, "wait": 1},
               "history": [{"epoch": 1, "train_loss": 0.5}]},
        best_weights={"W1": np.ones((3, 2), dtype=np.float32), "b1": np.ones(3, np.float32)},
        mean=np.arange(2, dtype=np.float32), scale=np.ones(2, dtype=np.float32),
    )


def test_round_trip_is_exact() -> None:
    original = _checkpoint()
    restored = Checkpoint.from_bytes(original.to_bytes())
    assert (restored.epoch, restored.seed) == (4, 2**62 + 5)
    for saved, loaded in [(original.weights, restored.weights),
                          (original.optimizer, restored.optimizer),
                          (original.best_weights, restored.best_weights)]:
        assert saved is not None and loaded is not None
        assert saved.keys() == loaded.keys()
        for name in saved:
            assert loaded[name].dtype == saved[name].dtype
            assert np.array_equal(loaded[name], saved[name])
    assert restored.state == original.state
    assert restored.mean is not None and np.array_equal(restored.mean, original.mean)


def test_the_generator_continues_identically_after_a_round_trip() -> None:
    original = _checkpoint()
    a = np.random.default_rng()
    a.bit_generator.state = original.rng_state
    b = np.random.default_rng()
    b.bit_generator.state = Checkpoint.from_bytes(original.to_bytes()).rng_state
    assert np.array_equal(a.permutation(100), b.permutation(100))


def test_the_state_member_is_plain_json() -> None:
    with np.load(io.BytesIO(_checkpoint().to_bytes()), allow_pickle=False) as npz:
        header = json.loads(npz["state.json"].tobytes().decode("utf-8"))
    assert header["format"] == "feedforward-checkpoint"
    assert header["rng_state"]["bit_generator"] == "PCG64"


def test_without_best_weights_or_standardizer() -> None:
    original = _checkpoint()
    original.best_weights, original.mean, original.scale = None, None, None
    restored = Checkpoint.from_bytes(original.to_bytes())
    assert (restored.best_weights, restored.mean, restored.scale) == (None, None, None)


def test_garbage_is_rejected() -> None:
    with pytest.raises(SerializationError, match="not a training checkpoint"):
        Checkpoint.from_bytes(b"definitely not a zip file")


def test_an_npz_without_the_state_member_is_rejected() -> None:
    buffer = io.BytesIO()
    np.savez(buffer, W1=np.zeros((2, 2)))
    with pytest.raises(SerializationError, match=r"no state\.json"):
        Checkpoint.from_bytes(buffer.getvalue())


def test_object_arrays_are_refused_rather_than_unpickled() -> None:
    data = _checkpoint().to_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(buffer, "w") as target:
        for item in source.infolist():
            target.writestr(item, source.read(item.filename))
        evil = io.BytesIO()
        np.save(evil, np.array([{"x": 1}], dtype=object), allow_pickle=True)
        target.writestr("weights/W2.npy", evil.getvalue())
    with pytest.raises(SerializationError):
        Checkpoint.from_bytes(buffer.getvalue())


def test_a_newer_version_is_rejected_with_the_supported_one_named() -> None:
    original = _checkpoint()
    arrays = dict(np.load(io.BytesIO(original.to_bytes()), allow_pickle=False))
    header = json.loads(arrays["state.json"].tobytes())
    header["version"] = 99
    arrays["state.json"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with pytest.raises(SerializationError, match="reads version 1"):
        Checkpoint.from_bytes(buffer.getvalue())
