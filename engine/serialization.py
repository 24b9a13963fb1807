"""A model as bytes: an .npz of plain numeric arrays plus the spec as JSON. No code, no pickle.

Members:
    W1, b1, W2, …          weights in the lecture's orientation (engine.spec.layer_shapes)
    gamma{l}, beta{l}      learned PReLU / swish parameters of layer l
    mean, scale            the standardizer, when the model has one
    spec.json              uint8 bytes of UTF-8 JSON: format, version, network spec, n_inputs, loss,
                           task, dtype, metadata
Readers may use `np.load(io.BytesIO(data), allow_pickle=False)`. `decode` trusts nothing: it checks
member names, declared sizes (before decompressing), dtypes and shapes against the spec, and raises
SerializationError for anything this engine would not have written.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from engine.errors import EngineError, SerializationError
from engine.network import Network
from engine.preprocessing import Standardizer
from engine.spec import NetworkSpec, layer_shapes

__all__ = ["FORMAT", "VERSION", "DecodedModel", "decode", "encode"]

Array = np.ndarray

FORMAT, VERSION = "feedforward.model", 1
SPEC_MEMBER = "spec.json"
MAX_SPEC_BYTES = 8 * 2**20  # a spec of 1,024 layers plus metadata is far below this
NPY_HEADER_ALLOWANCE = 4096  # an .npy header is < 200 bytes; the rest is slack, not data
MAX_DECODED_BYTES = 4 * 2**30  # refuse to allocate more than this for one model's arrays
TASKS = ("classification", "regression")


@dataclass(frozen=True)
class DecodedModel:
    network: Network
    standardizer: Standardizer | None
    task: str
    metadata: dict[str, Any]


def encode(
    network: Network, standardizer: Standardizer | None, task: str, metadata: dict[str, Any]
) -> bytes:
    """The .npz bytes for a model (metadata must be JSON-able, without NaN or infinity)."""
    header = {
        "format": FORMAT, "version": VERSION, "network": network.spec.model_dump(mode="json"),
        "n_inputs": network.n_inputs, "loss": network.loss, "task": task,
        "dtype": network.dtype.name, "metadata": metadata,
    }
    try:
        spec_json = json.dumps(header, allow_nan=False, sort_keys=True).encode("utf-8")
    except (TypeError, ValueError) as error:
        raise SerializationError(f"model metadata is not plain JSON: {error}") from error
    arrays = network.get_weights()
    if standardizer is not None:
        arrays["mean"], arrays["scale"] = standardizer.mean, standardizer.scale
    arrays[SPEC_MEMBER] = np.frombuffer(spec_json, dtype=np.uint8)
    buffer = io.BytesIO()
    # Uncompressed: weights barely compress (8 %) and deflate costs ~30 ms per MB on the path that
    # publishes every model.
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # stub: **kwds vs allow_pickle
    return buffer.getvalue()


def decode(data: bytes) -> DecodedModel:
    """Rebuild what `encode` wrote, exactly; SerializationError for anything else."""
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise SerializationError("not an .npz model archive")
        with loaded as archive:
            return _decode_archive(archive)
    except SerializationError:
        raise
    except EngineError as error:
        raise SerializationError(f"the stored model is invalid: {error}") from error
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise SerializationError(f"not a model archive: {error}") from error


def _decode_archive(archive: Any) -> DecodedModel:
    sizes = {info.filename.removesuffix(".npy"): info.file_size for info in archive.zip.infolist()}
    header = _read_header(archive, sizes)
    spec = _network_spec(header)
    dtype = np.dtype(header["dtype"])
    shapes = _member_shapes(spec, header["n_inputs"], "mean" in sizes or "scale" in sizes)
    _check_members(sizes, shapes, dtype)
    network = Network.from_spec(  # initial weights are placeholders, all overwritten below
        spec, header["n_inputs"], loss=header["loss"], dtype=dtype, rng=np.random.default_rng(0)
    )
    arrays = {name: _read_array(archive, name, shape, dtype) for name, shape in shapes.items()}
    standardizer = None
    if "mean" in arrays:
        standardizer = Standardizer(arrays.pop("mean"), arrays.pop("scale"))
    network.set_weights(arrays)
    return DecodedModel(network, standardizer, header["task"], header["metadata"])


def _member_shapes(
    spec: NetworkSpec, n_inputs: int, standardized: bool
) -> dict[str, tuple[int, ...]]:
    """Every array member the spec implies, named as Network.get_weights names them."""
    shapes = {
        f"{name}{index}": shape
        for index, layer in enumerate(layer_shapes(spec, n_inputs), start=1)
        for name, shape in layer.items()
    }
    if standardized:
        shapes["mean"] = shapes["scale"] = (n_inputs,)
    return shapes


def _check_members(
    sizes: dict[str, int], shapes: dict[str, tuple[int, ...]], dtype: np.dtype[Any]
) -> None:
    """Names, and declared sizes against the spec, all before anything is decompressed."""
    unexpected = sorted(set(sizes) - set(shapes) - {SPEC_MEMBER})
    missing = sorted(set(shapes) - set(sizes))
    if unexpected or missing:
        raise SerializationError(f"archive members: missing {missing}, unexpected {unexpected}")
    expected_bytes = {name: math.prod(shape) * dtype.itemsize for name, shape in shapes.items()}
    if sum(expected_bytes.values()) > MAX_DECODED_BYTES:
        raise SerializationError(f"the model would need more than {MAX_DECODED_BYTES} bytes")
    for name, nbytes in expected_bytes.items():
        if not nbytes <= sizes[name] <= nbytes + NPY_HEADER_ALLOWANCE:
            raise SerializationError(
                f"member {name!r} declares {sizes[name]} bytes; the spec implies {nbytes} + header"
            )


def _read_header(archive: Any, sizes: dict[str, int]) -> dict[str, Any]:
    if SPEC_MEMBER not in sizes:
        raise SerializationError(f"the archive has no {SPEC_MEMBER!r} member")
    if sizes[SPEC_MEMBER] > MAX_SPEC_BYTES:
        raise SerializationError(f"{SPEC_MEMBER!r} is larger than {MAX_SPEC_BYTES} bytes")
    raw = archive[SPEC_MEMBER]
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise SerializationError(f"{SPEC_MEMBER!r} must be 1-D uint8 bytes")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SerializationError(f"{SPEC_MEMBER!r} is not UTF-8 JSON: {error}") from error
    _check_header(header)
    return header  # type: ignore[no-any-return]


def _check_header(header: Any) -> None:
    keys = {"format", "version", "network", "n_inputs", "loss", "task", "dtype", "metadata"}
    if not isinstance(header, dict) or set(header) != keys:
        raise SerializationError(f"{SPEC_MEMBER!r} must be an object with keys {sorted(keys)}")
    if header["format"] != FORMAT or header["version"] != VERSION:
        raise SerializationError(
            f"unsupported model format {header['format']!r} version {header['version']!r}; "
            f"this engine reads {FORMAT!r} version {VERSION}"
        )
    if header["task"] not in TASKS or header["dtype"] not in ("float32", "float64"):
        raise SerializationError("task must be classification or regression, dtype float32/64")
    n_inputs = header["n_inputs"]
    if not isinstance(n_inputs, int) or isinstance(n_inputs, bool) or n_inputs < 1:
        raise SerializationError("n_inputs must be a positive integer")
    if not isinstance(header["metadata"], dict):
        raise SerializationError("metadata must be a JSON object")
    expected_loss = "cross_entropy" if header["task"] == "classification" else "mse"
    if header["loss"] != expected_loss:
        raise SerializationError(f"a {header['task']} model needs loss {expected_loss!r}")


def _network_spec(header: dict[str, Any]) -> NetworkSpec:
    try:
        return NetworkSpec.model_validate(header["network"])
    except ValidationError as error:
        raise SerializationError(f"invalid network spec in the model: {error}") from error


def _read_array(archive: Any, name: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Array:
    array = archive[name]
    if array.dtype != dtype or array.shape != shape:
        raise SerializationError(
            f"member {name!r} is {array.dtype}{list(array.shape)}; expected {dtype}{list(shape)}"
        )
    return array  # type: ignore[no-any-return]
