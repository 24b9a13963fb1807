"""Model bytes: exact round trip for every registry entry and both dtypes, readable with plain
`np.load(..., allow_pickle=False)`; SerializationError for anything this engine did not write; and
what a Model does with raw rows (predict, predict_proba, evaluate in one pass)."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np
import pytest

import engine.network as network_module
from engine.activations import ACTIVATIONS
from engine.batching import feature_moments
from engine.errors import DataError, SerializationError
from engine.model import Model
from engine.network import Network
from engine.preprocessing import Standardizer
from engine.spec import INITIALIZER_NAMES, NetworkSpec

HIDDEN_VARIANTS: list[Any] = [
    {"name": name} for name in ACTIVATIONS if name != "softmax"
] + [
    {"name": "leaky_relu", "gamma": 0.3}, {"name": "prelu", "gamma": 0.1},
    {"name": "elu", "gamma": 0.4}, {"name": "swish", "beta": 1.5},
    {"name": "swish", "beta": 0.5, "learnable": True}, {"name": "gelu", "approximate": True},
]
N_INPUTS = 3


def make_model(hidden: dict[str, Any], dtype: str, *, output: str = "softmax",
               standardize: bool = True, seed: int = 0, init: str = "auto") -> Model:
    rng = np.random.default_rng(seed)
    units = {"softmax": 3, "logistic": 1}.get(output, 2)
    spec = NetworkSpec.model_validate({"init": init, "layers": [
        {"units": 4, "activation": hidden}, {"type": "maxout", "units": 3, "pieces": 2},
        {"units": units, "activation": output},
    ]})
    loss = "mse" if output == "identity" else "cross_entropy"
    network = Network.from_spec(spec, N_INPUTS, loss=loss, dtype=dtype, rng=rng)
    for layer in network.params:  # learned parameters moved away from their initial values
        for array in layer.values():
            array += rng.normal(scale=0.1, size=array.shape).astype(dtype)
    X = rng.normal(loc=2.0, scale=3.0, size=(20, N_INPUTS))
    standardizer = Standardizer.fit(X, dtype=dtype) if standardize else None
    task = "regression" if output == "identity" else "classification"
    return Model(network, standardizer, task, {"classes": ["a", "b", "c"], "seed": seed})


def raw_inputs(n: int = 6) -> np.ndarray:
    return np.random.default_rng(9).normal(loc=2.0, scale=3.0, size=(n, N_INPUTS))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden", HIDDEN_VARIANTS, ids=lambda h: json.dumps(h))
def test_round_trip_is_exact_for_every_activation_and_maxout(hidden: dict, dtype: str) -> None:
    model = make_model(hidden, dtype)
    restored = Model.from_bytes(model.to_bytes())
    assert restored.network.spec == model.network.spec
    assert restored.network.dtype == np.dtype(dtype)
    assert (restored.task, restored.metadata) == (model.task, model.metadata)
    original, loaded = model.network.get_weights(), restored.network.get_weights()
    assert list(loaded) == list(original)
    for name, array in original.items():
        assert loaded[name].dtype == array.dtype
        np.testing.assert_array_equal(loaded[name], array)
    assert model.standardizer is not None and restored.standardizer is not None
    np.testing.assert_array_equal(restored.standardizer.mean, model.standardizer.mean)
    np.testing.assert_array_equal(restored.standardizer.scale, model.standardizer.scale)
    X = raw_inputs()
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("init", [name for name in INITIALIZER_NAMES if name != "auto"])
def test_round_trip_keeps_every_initializer_name(init: str) -> None:
    model = make_model({"name": "tanh"}, "float32", init=init)
    restored = Model.from_bytes(model.to_bytes())
    assert restored.network.spec.init == init
    assert restored.network.spec == model.network.spec
    for name, array in model.network.get_weights().items():
        np.testing.assert_array_equal(restored.network.get_weights()[name], array)


@pytest.mark.parametrize("output", ["logistic", "identity"])
def test_round_trip_for_logistic_and_regression_outputs_without_standardizer(output: str) -> None:
    model = make_model({"name": "tanh"}, "float64", output=output, standardize=False)
    restored = Model.from_bytes(model.to_bytes())
    assert restored.standardizer is None
    np.testing.assert_array_equal(restored.predict(raw_inputs()), model.predict(raw_inputs()))


def test_bytes_are_a_plain_npz_with_lecture_names() -> None:
    model = make_model({"name": "prelu"}, "float32")
    archive = np.load(io.BytesIO(model.to_bytes()), allow_pickle=False)
    assert sorted(archive.files) == sorted(
        ["W1", "b1", "gamma1", "W2", "b2", "W3", "b3", "mean", "scale", "spec.json"]
    )
    assert archive["W1"].shape == (4, N_INPUTS) and archive["W2"].shape == (3, 2, 4)
    header = json.loads(archive["spec.json"].tobytes())
    assert header["loss"] == "cross_entropy" and header["dtype"] == "float32"
    assert header["metadata"] == {"classes": ["a", "b", "c"], "seed": 0}


# --- rejection -------------------------------------------------------------------------------


def rewrite(data: bytes, *, drop: str = "", replace: dict[str, Any] | None = None) -> bytes:
    """The archive with one member dropped or replaced (saved the way np.savez saves arrays)."""
    archive = np.load(io.BytesIO(data), allow_pickle=False)
    arrays = {name: archive[name] for name in archive.files if name != drop}
    arrays.update(replace or {})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def spec_bytes(header: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)


@pytest.fixture
def model_bytes() -> bytes:
    return make_model({"name": "relu"}, "float32").to_bytes()


def header_of(data: bytes) -> dict[str, Any]:
    return dict(json.loads(np.load(io.BytesIO(data), allow_pickle=False)["spec.json"].tobytes()))


@pytest.mark.parametrize("data", [b"", b"not a model", b"\x80\x04\x95\x05\x00N.",
                                  b"PK\x03\x04 truncated zip"])
def test_arbitrary_bytes_are_rejected(data: bytes) -> None:
    with pytest.raises(SerializationError):
        Model.from_bytes(data)


def test_a_single_npy_array_is_rejected() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(3))
    with pytest.raises(SerializationError, match="npz"):
        Model.from_bytes(buffer.getvalue())


def test_an_object_array_member_is_rejected(model_bytes: bytes) -> None:
    evil = np.array([{"__reduce__": "os.system"}, None], dtype=object)
    with pytest.raises(SerializationError):
        Model.from_bytes(rewrite(model_bytes, replace={"W1": evil}))


def test_missing_and_unexpected_members_are_rejected(model_bytes: bytes) -> None:
    with pytest.raises(SerializationError, match="missing"):
        Model.from_bytes(rewrite(model_bytes, drop="b2"))
    with pytest.raises(SerializationError, match="unexpected"):
        Model.from_bytes(rewrite(model_bytes, replace={"W9": np.zeros(2, dtype=np.float32)}))
    with pytest.raises(SerializationError, match="spec.json"):
        Model.from_bytes(rewrite(model_bytes, drop="spec.json"))


def test_wrong_dtype_or_shape_of_a_member_is_rejected(model_bytes: bytes) -> None:
    W1 = np.load(io.BytesIO(model_bytes), allow_pickle=False)["W1"]
    with pytest.raises(SerializationError):
        Model.from_bytes(rewrite(model_bytes, replace={"W1": W1.astype(np.float64)}))
    with pytest.raises(SerializationError):
        Model.from_bytes(rewrite(model_bytes, replace={"W1": W1[:, :2].copy()}))


def test_member_larger_than_the_spec_implies_is_rejected_before_reading(model_bytes: bytes) -> None:
    huge = np.zeros(10_000, dtype=np.float32)  # decompressing it would be wasted work
    with pytest.raises(SerializationError, match="declares"):
        Model.from_bytes(rewrite(model_bytes, replace={"b1": huge}))


@pytest.mark.parametrize(
    "change",
    [
        {"network": {"layers": [{"units": 4, "activation": "sine"}]}},
        {"network": {"layers": [{"units": 4, "activation": "relu", "extra": 1}]}},
        {"format": "keras"}, {"version": 2}, {"task": "ranking"}, {"dtype": "float16"},
        {"n_inputs": -1}, {"n_inputs": True}, {"loss": "mse"}, {"metadata": []},
        {"unexpected": "key"},
    ],
    ids=lambda change: json.dumps(change)[:40],
)
def test_a_bad_spec_json_is_rejected(model_bytes: bytes, change: dict[str, Any]) -> None:
    header = {**header_of(model_bytes), **change}
    with pytest.raises(SerializationError):
        Model.from_bytes(rewrite(model_bytes, replace={"spec.json": spec_bytes(header)}))


def test_spec_json_that_is_not_json_is_rejected(model_bytes: bytes) -> None:
    garbage = np.frombuffer(b"{not json", dtype=np.uint8)
    with pytest.raises(SerializationError, match="JSON"):
        Model.from_bytes(rewrite(model_bytes, replace={"spec.json": garbage}))
    as_floats = np.arange(4, dtype=np.float32)
    with pytest.raises(SerializationError, match="uint8"):
        Model.from_bytes(rewrite(model_bytes, replace={"spec.json": as_floats}))


def test_an_archive_with_a_zip_member_that_is_not_npy_is_rejected(model_bytes: bytes) -> None:
    buffer = io.BytesIO(model_bytes)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr("payload.py", "print('hello')")
    with pytest.raises(SerializationError):
        Model.from_bytes(buffer.getvalue())


def test_metadata_must_be_plain_json() -> None:
    model = make_model({"name": "relu"}, "float64")
    model.metadata["bad"] = float("nan")
    with pytest.raises(SerializationError, match="JSON"):
        model.to_bytes()


# --- predictions and preprocessing -----------------------------------------------------------


def test_predict_rejects_wrong_width_and_non_finite_inputs() -> None:
    model = make_model({"name": "tanh"}, "float32")
    with pytest.raises(DataError, match="3 features"):
        model.predict(np.zeros((2, 4)))
    with pytest.raises(DataError, match="row 1, feature 2 is NaN or infinity"):
        model.predict([[1.0, np.nan, 0.0]])
    with pytest.raises(DataError, match=r"row 2, feature 1 is 1e\+300, beyond this model's"):
        model.predict([[0.0, 0.0, 0.0], [1e300, 0.0, 0.0]])  # finite, but not in float32
    with pytest.raises(DataError, match="numbers"):
        model.predict([["a", "b", "c"]])


def test_evaluate_names_the_target_that_is_not_finite() -> None:
    model = make_model({"name": "tanh"}, "float32", output="identity")  # two regression targets
    X = np.zeros((2, N_INPUTS))
    with pytest.raises(DataError, match=r"targets row 2, target 2 is 1e\+300, beyond"):
        model.evaluate(X, np.array([[0.0, 0.0], [0.0, 1e300]]))
    with pytest.raises(DataError, match="targets row 1, target 1 is NaN or infinity"):
        model.evaluate(X, np.array([[np.inf, 0.0], [0.0, 0.0]]))


def test_predictions_standardize_raw_inputs_first() -> None:
    model = make_model({"name": "tanh"}, "float64")
    X = raw_inputs()
    assert model.standardizer is not None
    standardized = (X - model.standardizer.mean) / model.standardizer.scale
    np.testing.assert_array_equal(model.predict_proba(X), model.network.forward(standardized))
    np.testing.assert_array_equal(model.predict(X), np.argmax(model.predict_proba(X), axis=1))


def test_logistic_output_gives_two_probability_columns_and_class_indices() -> None:
    model = make_model({"name": "tanh"}, "float64", output="logistic")
    probabilities = model.predict_proba(raw_inputs())
    assert probabilities.shape == (6, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict(raw_inputs()), probabilities[:, 1] > 0.5)


def test_regression_predicts_values_and_has_no_probabilities() -> None:
    model = make_model({"name": "tanh"}, "float64", output="identity")
    assert model.predict(raw_inputs()).shape == (6, 2)
    with pytest.raises(DataError):
        model.predict_proba(raw_inputs())


def test_standardizer_fit_uses_population_std_and_leaves_constant_columns_unscaled() -> None:
    X = np.array([[1.0, 5.0, 2.0], [3.0, 5.0, 4.0], [5.0, 5.0, 9.0]])
    standardizer = Standardizer.fit(X)
    np.testing.assert_allclose(standardizer.mean, X.mean(axis=0))
    np.testing.assert_allclose(standardizer.scale, [X[:, 0].std(), 1.0, X[:, 2].std()])
    out = X.copy()
    assert standardizer.transform(out, out=out) is out
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-15)
    np.testing.assert_allclose(out[:, [0, 2]].std(axis=0), 1.0)
    with pytest.raises(DataError):
        standardizer.transform(np.zeros((2, 2)))
    with pytest.raises(DataError):
        Standardizer(np.zeros(2), np.array([1.0, 0.0]))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_constant_column_is_left_unscaled_even_when_its_std_is_not_exactly_zero(
    dtype: str,
) -> None:
    X = np.column_stack([np.arange(10.0), np.full(10, 0.1), np.r_[np.zeros(9), 1e-45]])
    assert feature_moments(X).std[1] > 0  # 1.4e-17: the float64 mean of ten 0.1s is an ulp off
    standardizer = Standardizer.fit(X, dtype=dtype)
    assert standardizer.scale[1] == 1.0  # not ~1e-17, which would turn 0.2 into 7e15
    assert standardizer.scale[2] == (1.0 if dtype == "float32" else X[:, 2].std())  # 0 in float32
    transformed = standardizer.transform(np.array([[0.0, 0.2, 0.0]], dtype=dtype))
    assert abs(transformed[0, 1] - 0.1) < 1e-6


def test_float64_standardizer_on_float32_network_round_trips_in_float32() -> None:
    spec = NetworkSpec.model_validate({"layers": [{"units": 3, "activation": "softmax"}]})
    network = Network.from_spec(spec, 4, loss="cross_entropy", dtype="float32",
                                rng=np.random.default_rng(0))
    X = np.random.default_rng(1).normal(5.0, 2.0, size=(20, 4))
    model = Model(network, Standardizer.fit(X), task="classification")  # fit defaults to float64
    assert model.standardizer is not None
    assert model.standardizer.mean.dtype == np.float32
    loaded = Model.from_bytes(model.to_bytes())
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("chunk_rows", [4, 10_000], ids=["chunked", "one-chunk"])
@pytest.mark.parametrize("output", ["softmax", "logistic", "identity"])
def test_evaluate_is_the_loss_and_the_predictions(
    output: str, chunk_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(network_module, "EVALUATION_CHUNK_ROWS", chunk_rows)
    model = make_model({"name": "tanh"}, "float64", output=output)
    X = raw_inputs(n=11)  # 11 rows: the last of three chunks is partial
    rng = np.random.default_rng(4)
    y = rng.normal(size=(11, 2)) if output == "identity" else rng.integers(0, model.n_classes, 11)

    loss, predicted = model.evaluate(X, y)

    expected_loss = model.network.evaluate_loss(model.prepare_inputs(X),
                                                model.prepare_targets(y, 11))
    assert loss == pytest.approx(expected_loss, rel=1e-14)
    assert predicted.dtype == model.predict(X).dtype
    np.testing.assert_array_equal(predicted, model.predict(X))
    if output != "identity":  # the classes are those of predict_proba's most likely column
        np.testing.assert_array_equal(predicted, model.predict_proba(X).argmax(axis=1))
