"""Messages between the supervisor and its worker processes, without pickle.

A message is a sequence of byte frames on a `multiprocessing` Connection (`send_bytes` /
`recv_bytes`): first a UTF-8 JSON head `{"kind", "header", "blobs": [names…]}`, then one frame per
named blob. Blobs carry opaque bytes (checkpoints, model npz, dataset npz — the worker reads those
with `allow_pickle=False`). Nothing on the wire is ever unpickled, and big blobs are sent as they
are, without being copied into one buffer first.

Each end of a Connection must be written by one thread only (so frames never interleave).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

__all__ = ["Message", "ProtocolError", "arrays_from_npz", "arrays_to_npz", "recv", "send"]

MAX_HEAD_BYTES = 64 * 1024 * 1024  # metrics, diagnostics and findings of one epoch fit easily


class ProtocolError(ValueError):
    """Frames that this protocol did not write."""


@dataclass(frozen=True)
class Message:
    """One message: a kind ("run", "epoch", "finished", …), a JSON header and named blobs."""

    kind: str
    header: dict[str, Any] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)


def arrays_to_npz(arrays: dict[str, np.ndarray]) -> bytes:
    """Uncompressed npz bytes of plain numeric arrays (object arrays are refused)."""
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def arrays_from_npz(data: bytes, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """The arrays of npz bytes (only `names` when given), loaded with allow_pickle=False."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {name: npz[name] for name in (names if names is not None else npz.files)}


def _head_bytes(message: Message, blob_names: list[str]) -> bytes:
    head = {"kind": message.kind, "header": message.header, "blobs": blob_names}
    return json.dumps(head, allow_nan=False, separators=(",", ":")).encode()


def send(conn: Connection, message: Message) -> None:
    """Write one message; the header must be strict JSON (no NaN/Infinity)."""
    conn.send_bytes(_head_bytes(message, list(message.blobs)))
    for data in message.blobs.values():
        conn.send_bytes(data)


def _parse_head(frame: bytes) -> dict[str, Any]:
    try:
        head = json.loads(frame)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError("message head is not JSON") from exc
    if not isinstance(head, dict) or not isinstance(head.get("kind"), str):
        raise ProtocolError("message head has no kind")
    names = head.get("blobs", [])
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ProtocolError("message head lists no blob names")
    return head


def recv(conn: Connection) -> Message:
    """Read one message written by `send`; EOFError when the other end is closed."""
    head = _parse_head(conn.recv_bytes(MAX_HEAD_BYTES))
    blobs = {name: conn.recv_bytes() for name in head.get("blobs", [])}
    header = head.get("header", {})
    return Message(head["kind"], header if isinstance(header, dict) else {}, blobs)
