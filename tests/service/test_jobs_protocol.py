"""The supervisor ↔ worker wire format: JSON head + raw blobs, never pickle; npz for arrays."""

from __future__ import annotations

import io
import multiprocessing
import pickle
import zipfile

import numpy as np
import pytest

from service.jobs.protocol import (
    Message,
    ProtocolError,
    arrays_from_npz,
    arrays_to_npz,
    recv,
    send,
)


@pytest.fixture
def pipe():
    left, right = multiprocessing.get_context("spawn").Pipe(duplex=True)
    yield left, right
    left.close()
    right.close()


def test_message_round_trips_header_and_blobs(pipe):
    left, right = pipe
    checkpoint = bytes(range(256)) * 100
    message = Message("run", {"job_id": "abc", "spec": {"epochs": 3, "l2": 0.5}},
                      {"checkpoint": checkpoint, "empty": b""})

    send(left, message)
    received = recv(right)

    assert received.kind == "run"
    assert received.header == {"job_id": "abc", "spec": {"epochs": 3, "l2": 0.5}}
    assert received.blobs == {"checkpoint": checkpoint, "empty": b""}


def test_messages_keep_their_order_on_one_pipe(pipe):
    left, right = pipe
    for epoch in range(1, 6):
        send(left, Message("epoch", {"epoch": epoch}, {"checkpoint": bytes([epoch]) * epoch}))
    received = [recv(right) for _ in range(5)]
    assert [m.header["epoch"] for m in received] == [1, 2, 3, 4, 5]
    assert [len(m.blobs["checkpoint"]) for m in received] == [1, 2, 3, 4, 5]


def test_send_refuses_non_finite_header_values(pipe):
    left, _ = pipe
    with pytest.raises(ValueError):
        send(left, Message("epoch", {"train_loss": float("nan")}))


def test_arrays_round_trip_through_npz_and_object_arrays_are_refused():
    rng = np.random.default_rng(0)
    arrays = {"X": rng.standard_normal((50, 7)).astype(np.float32),
              "y": rng.integers(0, 3, size=50, dtype=np.int64)}
    received = arrays_from_npz(arrays_to_npz(arrays))
    assert set(received) == {"X", "y"}
    for name, array in arrays.items():
        assert received[name].dtype == array.dtype
        np.testing.assert_array_equal(received[name], array)
    with pytest.raises(ValueError):
        arrays_to_npz({"X": np.array([{"a": 1}], dtype=object)})


def test_recv_rejects_a_pickled_frame_without_unpickling_it(pipe):
    left, right = pipe
    left.send_bytes(pickle.dumps({"kind": "run"}))
    with pytest.raises(ProtocolError):
        recv(right)


def test_recv_rejects_a_head_without_kind(pipe):
    left, right = pipe
    left.send_bytes(b'{"header": {}}')
    with pytest.raises(ProtocolError):
        recv(right)


def test_arrays_from_npz_refuses_object_members():
    buffer = io.BytesIO()
    np.save(buffer, np.array([object()], dtype=object), allow_pickle=True)
    npz = io.BytesIO()
    with zipfile.ZipFile(npz, "w") as archive:
        archive.writestr("X.npy", buffer.getvalue())
    with pytest.raises(ValueError):
        arrays_from_npz(npz.getvalue())


def test_arrays_from_npz_loads_only_the_named_members():
    buffer = io.BytesIO()
    np.savez(buffer, X=np.zeros((2, 2)), y=np.arange(2), classes=np.array(["a", "b"]))
    arrays = arrays_from_npz(buffer.getvalue(), ("X", "y"))
    assert set(arrays) == {"X", "y"}
