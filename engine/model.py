"""A trained model: the network, the preprocessing its inputs need, the task and free metadata.

This is what the service stores (`to_bytes`) and serves: predictions take raw feature rows, apply
the stored standardisation in the network's dtype (as training did) and run the forward pass.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Literal

import numpy as np

from engine.errors import DataError
from engine.network import Network
from engine.preprocessing import Standardizer
from engine.serialization import decode, encode

__all__ = ["Model", "Task"]

Array = np.ndarray
Task = Literal["classification", "regression"]


class Model:
    """A network plus preprocessing. `metadata` is JSON-able (the service keeps classes etc.).

    A Model may be shared between threads: every pass through its network holds `lock`, because
    the network computes in buffers it reuses.
    """

    def __init__(
        self,
        network: Network,
        standardizer: Standardizer | None = None,
        task: Task = "classification",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if task not in ("classification", "regression"):
            raise ValueError(f"task must be 'classification' or 'regression', not {task!r}")
        if standardizer is not None and standardizer.n_features != network.n_inputs:
            raise DataError(
                f"the standardizer has {standardizer.n_features} features; "
                f"the network takes {network.n_inputs}"
            )
        if standardizer is not None and standardizer.mean.dtype != network.dtype:
            # One dtype end to end: a float64 fit on a float32 network is stored as float32.
            standardizer = Standardizer(
                standardizer.mean.astype(network.dtype), standardizer.scale.astype(network.dtype)
            )
        self.network, self.standardizer, self.task = network, standardizer, task
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.lock = threading.Lock()

    @property
    def n_features(self) -> int:
        return self.network.n_inputs

    def prepare_inputs(self, X_raw: Any) -> Array:
        """Raw rows → a new array in the network's dtype, standardised when the model says so."""
        try:
            with np.errstate(over="ignore"):  # values beyond the dtype become inf, refused below
                X = np.array(X_raw, dtype=self.network.dtype, copy=True, ndmin=2)
        except (TypeError, ValueError) as error:
            raise DataError(f"inputs must be rows of numbers: {error}") from error
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise DataError(
                f"expected rows of {self.n_features} features, got an array of shape {X.shape}"
            )
        if not np.all(np.isfinite(X)):
            raise _not_finite("inputs", "feature", X_raw, X)
        if self.standardizer is not None:
            self.standardizer.transform(X, out=X)
        return X

    @property
    def n_classes(self) -> int:
        """K for classification: the softmax width, or 2 for one logistic unit."""
        units = self.network.layers[-1].units
        return 2 if units == 1 else units

    def prepare_targets(self, y: Any, n_rows: int) -> Array:
        """Class indices (int64, shape (n,)) or values (network dtype, shape (n, n_targets))."""
        y = np.asarray(y)
        if self.task == "classification":
            return _class_indices(y, n_rows, self.n_classes)
        return _target_values(y, n_rows, self.network.layers[-1].units, self.network.dtype)

    def predict_proba(self, X_raw: Any) -> Array:
        """Class probabilities (n, K); a single logistic output gives columns [1 − p, p]."""
        if self.task != "classification":
            raise DataError("predict_proba is for classification models; use predict")
        output = self._forward(X_raw)
        if output.shape[1] == 1:
            return np.concatenate([1 - output, output], axis=1)
        return output

    def predict(self, X_raw: Any) -> Array:
        """Class indices (n,) for classification, values (n, n_targets) for regression."""
        return self._predictions(self._forward(X_raw))

    def evaluate(self, X_raw: Any, y: Any) -> tuple[float, Array]:
        """(mean loss without the L2 term, `predict`'s output) for the same rows, in one pass."""
        X = self.prepare_inputs(X_raw)
        targets = self.prepare_targets(y, X.shape[0])
        with self.lock:
            loss, output = self.network.loss_and_output(X, targets)
        return float(loss), self._predictions(output)

    def _predictions(self, output: Array) -> Array:
        if self.task == "regression":
            return output
        if output.shape[1] == 1:
            return (output[:, 0] > 0.5).astype(np.int64)
        result: Array = np.argmax(output, axis=1).astype(np.int64)
        return result

    def _forward(self, X_raw: Any) -> Array:
        X = self.prepare_inputs(X_raw)
        with self.lock:
            return self.network.forward(X)

    def to_bytes(self) -> bytes:
        """An .npz readable with `np.load(io.BytesIO(b), allow_pickle=False)`; see serialization."""
        return encode(self.network, self.standardizer, self.task, self.metadata)

    @classmethod
    def from_bytes(cls, data: bytes) -> Model:
        """The exact model `to_bytes` wrote; SerializationError for any other bytes."""
        decoded = decode(data)
        task: Task = "classification" if decoded.task == "classification" else "regression"
        return cls(decoded.network, decoded.standardizer, task, decoded.metadata)


def _class_indices(y: Array, n_rows: int, n_classes: int) -> Array:
    if y.shape != (n_rows,):
        raise DataError(f"expected {n_rows} class labels as a 1-D array, got shape {y.shape}")
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    if y.dtype.kind not in "iub":
        raise DataError(f"class labels must be integer class indices, not {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise DataError(f"class indices must lie in 0..{n_classes - 1}")
    return y.astype(np.int64)


def _target_values(y: Array, n_rows: int, n_targets: int, dtype: np.dtype[Any]) -> Array:
    if y.ndim == 1:
        y = y.reshape(-1, 1)
    if y.shape != (n_rows, n_targets):
        raise DataError(f"expected targets of shape ({n_rows}, {n_targets}), got {y.shape}")
    if y.dtype.kind not in "iuf":
        raise DataError(f"regression targets must be numbers, not {y.dtype}")
    with np.errstate(over="ignore"):  # values beyond the dtype become inf, refused below
        raw, y = y, y.astype(dtype)
    if not np.all(np.isfinite(y)):
        raise _not_finite("targets", "target", raw, y)
    return y


def _not_finite(what: str, column_name: str, raw: Any, converted: Array) -> DataError:
    """Where the first value that is not finite in `converted` (2-D) sits, and why: NaN or
    infinity, or a finite number beyond the range of the model's dtype (1e300 in float32)."""
    row, column = (int(i) for i in np.argwhere(~np.isfinite(converted))[0])
    with np.errstate(over="ignore"):
        value = float(np.asarray(raw, dtype=np.float64).reshape(converted.shape)[row, column])
    where = f"{what} row {row + 1}, {column_name} {column + 1}"
    if math.isfinite(value):
        limit = float(np.finfo(converted.dtype).max)
        return DataError(f"{where} is {value:g}, beyond this model's {converted.dtype} range "
                         f"(±{limit:.3g}); rescale the data")
    return DataError(f"{where} is NaN or infinity; every value must be a finite number")
