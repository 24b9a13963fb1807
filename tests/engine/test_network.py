"""The Network: lecture orientation, forward pass, caches, L2 on weights only, dtype discipline,
reused buffers and no layer-sized temporaries in the training step."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import engine.network as network_module
from engine import blas
from engine.errors import DataError, SpecError
from engine.layers import squared_norm
from engine.network import Network
from engine.optimizers import SGD
from engine.spec import NetworkSpec, layer_shapes, parameter_count

MIXED = {"layers": [
    {"units": 6, "activation": "prelu"},
    {"type": "maxout", "units": 5, "pieces": 3},
    {"units": 4, "activation": {"name": "swish", "learnable": True}},
    {"units": 3, "activation": "softmax"},
]}


def build(layers: dict, n_inputs: int = 4, loss: str = "cross_entropy", dtype: str = "float64",
          seed: int = 0) -> Network:
    spec = NetworkSpec.model_validate(layers)
    rng = np.random.default_rng(seed)
    return Network.from_spec(spec, n_inputs, loss=loss, dtype=dtype, rng=rng)


def batch(n: int = 5, n_inputs: int = 4, n_classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    return rng.normal(size=(n, n_inputs)), rng.integers(0, n_classes, n)


def test_parameters_have_the_spec_shapes_and_count() -> None:
    network = build(MIXED)
    shapes = [{name: array.shape for name, array in layer.items()} for layer in network.params]
    assert shapes == layer_shapes(network.spec, 4)
    allocated = sum(array.size for layer in network.params for array in layer.values())
    assert network.parameter_count() == parameter_count(network.spec, 4) == allocated
    assert [set(g) for g in network.grads] == [set(p) for p in network.params]


def test_forward_is_z_equals_W_a_plus_b_in_the_lecture_orientation() -> None:
    network = build({"layers": [{"units": 3, "activation": "tanh"},
                                {"units": 2, "activation": "identity"}]}, loss="mse")
    X = batch()[0]
    W1, b1 = network.params[0]["W"], network.params[0]["b"]
    W2, b2 = network.params[1]["W"], network.params[1]["b"]
    b1 += [0.1, -0.2, 0.3]
    b2 += [0.5, -0.5]
    assert W1.shape == (3, 4)  # (M_1, M_0)
    expected = np.stack([W2 @ np.tanh(W1 @ x + b1) + b2 for x in X])  # one sample at a time
    np.testing.assert_allclose(network.forward(X), expected, rtol=1e-13)


def test_loss_and_gradients_fills_the_caches_of_the_batch() -> None:
    network = build(MIXED)
    X, y = batch()
    loss = network.loss_and_gradients(X, y)
    cached = network.a[-1].copy()  # forward() below overwrites the buffer network.a[-1] is
    assert loss == pytest.approx(network.evaluate_loss(X, y), rel=1e-14)
    assert [z.shape for z in network.z] == [(5, 6), (5, 5), (5, 4), (5, 3)]
    assert [d.shape for d in network.delta] == [(5, 6), (5, 5), (5, 4), (5, 3)]
    np.testing.assert_allclose(network.a[-1].sum(axis=1), 1.0)
    np.testing.assert_allclose(network.a[0], np.where(network.z[0] > 0, 1, 0.25) * network.z[0])
    np.testing.assert_array_equal(cached, network.forward(X))


def test_dense_weights_and_their_gradients_are_stored_transposed() -> None:
    # (fan_in, units) in memory makes z = a Wᵀ and ∂L/∂W = aᵀδ plain GEMMs (engine/layers.py).
    network = build(MIXED)
    network.loss_and_gradients(*batch())
    assert network.params[0]["W"].T.flags.c_contiguous
    assert network.grads[0]["W"].T.flags.c_contiguous


NORM_PROBE = """
import tracemalloc
import numpy as np
from engine.layers import squared_norm
W = np.ones((784, 256), dtype=np.float32).T  # a Dense layer's W: an F-contiguous view
tracemalloc.start()
total = squared_norm(W)
print(tracemalloc.get_traced_memory()[1], total)
"""


def test_the_norm_of_a_transposed_weight_matrix_copies_nothing() -> None:
    W = np.arange(12.0).reshape(4, 3).T
    assert squared_norm(W) == pytest.approx(np.sum(W**2), rel=1e-15)
    # In a fresh interpreter, as for the training step below: tracemalloc counts every thread.
    probe = subprocess.run([sys.executable, "-c", NORM_PROBE], capture_output=True, text=True,
                           check=True, timeout=120)
    peak, total = probe.stdout.split()
    assert int(peak) < 100_000, f"peak {peak} bytes; W itself is 802,816"
    assert float(total) == 784 * 256


@pytest.mark.parametrize("fused_gemm", [True, False], ids=["blas-beta", "numpy"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_descend_is_one_sgd_step_of_loss_and_gradients(
    loss: str, fused_gemm: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if fused_gemm:
        if not blas.fused_gemm_available():
            pytest.skip("NumPy here does not use its bundled OpenBLAS")
        monkeypatch.setattr(blas, "FUSED_MIN_ELEMENTS", 0)  # these small layers too
    else:
        monkeypatch.setattr(blas, "_GEMMS", {})  # the NumPy path: matmul, then subtract
    layers = MIXED if loss == "cross_entropy" else {"layers": [
        *MIXED["layers"][:-1], {"units": 2, "activation": {"name": "prelu"}}]}
    stepped, fused = build(layers, loss=loss), build(layers, loss=loss)
    X, y = batch()
    if loss == "mse":
        y = np.random.default_rng(2).normal(size=(5, 2))
    before = stepped.get_weights()
    for _ in range(2):  # the second step starts from weights the first one changed
        plain_loss = stepped.loss_and_gradients(X, y, l2=0.3)
        SGD(stepped.params).step(stepped.params, stepped.grads, learning_rate=0.07)
        # (weights after step 1 agree to rounding, so the second loss does too)
        assert fused.descend(X, y, learning_rate=0.07, l2=0.3) == pytest.approx(plain_loss,
                                                                                  rel=1e-12)
    after = fused.get_weights()
    for name, weights in stepped.get_weights().items():  # W, b, PReLU γ, swish β, maxout pieces
        assert not np.array_equal(weights, before[name]), name
        np.testing.assert_allclose(after[name], weights, rtol=1e-12, atol=1e-15, err_msg=name)


def test_l2_adds_lambda_w_to_weight_gradients_only_and_is_not_in_the_returned_loss() -> None:
    network = build(MIXED)
    X, y = batch()
    plain_loss = network.loss_and_gradients(X, y)
    plain = [{k: v.copy() for k, v in g.items()} for g in network.grads]
    l2 = 0.3
    assert network.loss_and_gradients(X, y, l2=l2) == plain_loss
    for params, grads, before in zip(network.params, network.grads, plain, strict=True):
        np.testing.assert_allclose(grads["W"], before["W"] + l2 * params["W"], rtol=1e-14)
        for name in set(grads) - {"W"}:
            np.testing.assert_array_equal(grads[name], before[name])
    squares = sum(np.sum(p["W"] ** 2) for p in network.params)
    assert network.l2_penalty(l2) == pytest.approx(0.5 * l2 * squares, rel=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_network_dtype_holds_for_params_grads_caches_and_outputs(dtype: str) -> None:
    network = build(MIXED, dtype=dtype)
    X, y = batch()
    network.loss_and_gradients(X.astype(dtype), y, l2=0.1)
    arrays = [*network.z, *network.a, *network.delta, network.forward(X)]
    arrays += [a for layer in network.params + network.grads for a in layer.values()]
    assert {a.dtype for a in arrays} == {np.dtype(dtype)}
    assert isinstance(network.loss_and_gradients(X, y), float)


def test_training_step_reuses_its_buffers_and_gradient_arrays() -> None:
    network = build(MIXED)
    X, y = batch()
    network.loss_and_gradients(X, y)
    caches, grads = network.z + network.a + network.delta, network.grads[0]["W"]
    network.loss_and_gradients(X[::-1].copy(), y[::-1].copy())
    assert all(a is b for a, b in zip(caches, network.z + network.a + network.delta, strict=True))
    assert network.grads[0]["W"] is grads


ALLOCATION_PROBE = """
import tracemalloc
import numpy as np
from engine.network import Network
from engine.optimizers import SGD
from engine.spec import NetworkSpec
spec = NetworkSpec.model_validate({"layers": [{"units": 256, "activation": "relu"},
                                              {"units": 128, "activation": "tanh"},
                                              {"units": 10, "activation": "softmax"}]})
network = Network.from_spec(spec, 64, loss="cross_entropy", dtype="float32",
                            rng=np.random.default_rng(0))
rng = np.random.default_rng(1)
X = rng.normal(size=(128, 64)).astype(np.float32)
y = rng.integers(0, 10, size=128)
network.loss_and_gradients(X, y, l2=0.01)  # the first call allocates buffers for 128 rows
optimizer, peaks = SGD(network.params), []
for step in (lambda: network.loss_and_gradients(X, y, l2=0.01),
             lambda: optimizer.descend(network, X, y, 0.01, 0.01)):  # plain SGD's fused step
    step()
    tracemalloc.start()
    for _ in range(3):
        step()
    peaks.append(tracemalloc.get_traced_memory()[1])
    tracemalloc.stop()
print(max(peaks))
"""


def test_training_step_allocates_no_layer_sized_temporaries() -> None:
    # In a fresh interpreter: tracemalloc counts every thread, and earlier tests may leave
    # background threads (Dask, uvicorn clients) allocating in this process.
    probe = subprocess.run([sys.executable, "-c", ALLOCATION_PROBE], capture_output=True,
                           text=True, check=True, timeout=120)
    peak = int(probe.stdout.strip())
    # NumPy's broadcasting bias add keeps a fixed 8,192-element iteration buffer (32 KB); any
    # temporary of a hidden layer's size (here at least 128 × 128 float32 = 64 KB) would show.
    smallest_hidden_buffer = 128 * 128 * 4
    assert peak < smallest_hidden_buffer, f"peak {peak} bytes of temporaries per step"


def test_forward_in_chunks_equals_forward_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    network = build(MIXED)
    X, y = batch(n=23)
    whole, loss = network.forward(X), network.evaluate_loss(X, y)
    monkeypatch.setattr(network_module, "EVALUATION_CHUNK_ROWS", 4)
    np.testing.assert_allclose(network.forward(X), whole, rtol=1e-14)
    assert network.evaluate_loss(X, y) == pytest.approx(loss, rel=1e-13)


def test_inputs_of_the_wrong_width_are_data_errors() -> None:
    network = build(MIXED)
    with pytest.raises(DataError, match=r"\(n_samples, 4\)"):
        network.forward(np.zeros((2, 5)))
    with pytest.raises(DataError):
        network.loss_and_gradients(np.zeros(4), np.zeros(1, dtype=np.int64))


def test_get_and_set_weights_round_trip_and_check_names_and_shapes() -> None:
    source, target = build(MIXED, seed=1), build(MIXED, seed=2)
    weights = source.get_weights()
    assert list(weights) == ["W1", "b1", "gamma1", "W2", "b2", "W3", "b3", "beta3", "W4", "b4"]
    target.set_weights(weights)
    X = batch()[0]
    np.testing.assert_array_equal(target.forward(X), source.forward(X))
    weights["W1"][0, 0] += 1.0  # a copy: the source is untouched
    assert source.params[0]["W"][0, 0] != weights["W1"][0, 0]
    with pytest.raises(DataError, match="missing"):
        target.set_weights({k: v for k, v in weights.items() if k != "b2"})
    with pytest.raises(DataError, match="shape"):
        target.set_weights({**weights, "W1": np.zeros((4, 6))})


def test_set_weights_writes_in_place_so_optimizer_references_stay_valid() -> None:
    network = build(MIXED)
    def arrays() -> list[np.ndarray]:
        return [a for layer in network.params for a in layer.values()]

    before = arrays()
    network.set_weights({k: np.zeros_like(v) for k, v in network.get_weights().items()})
    assert all(a is b for a, b in zip(before, arrays(), strict=True))
    assert not any(np.any(a) for a in before)


@pytest.mark.parametrize(
    ("output", "loss"),
    [({"units": 3, "activation": "tanh"}, "cross_entropy"),
     ({"units": 3, "activation": "softmax"}, "mse")],
)
def test_loss_and_output_that_do_not_fit_are_spec_errors(output: dict, loss: str) -> None:
    with pytest.raises(SpecError):
        build({"layers": [{"units": 4}, output]}, loss=loss)


def test_invalid_sizes_and_dtypes_are_spec_errors() -> None:
    with pytest.raises(SpecError):
        build(MIXED, n_inputs=0)
    with pytest.raises(SpecError):
        build(MIXED, dtype="float16")
