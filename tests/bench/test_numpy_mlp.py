"""The hand-written NumPy MLP that bench/engine.py races against must do the engine's arithmetic:
otherwise `ours ÷ hand-written` would compare different work."""

from __future__ import annotations

import numpy as np

from bench._numpy_mlp import HandWrittenMLP
from engine.network import Network
from engine.spec import NetworkSpec

WIDTHS = (20, 16, 8, 5)


def engine_twin(model: HandWrittenMLP) -> Network:
    spec = NetworkSpec.model_validate({"layers": [
        {"units": 16, "activation": "relu"}, {"units": 8, "activation": "relu"},
        {"units": 5, "activation": "softmax"}]})
    network = Network.from_spec(spec, WIDTHS[0], loss="cross_entropy", dtype="float64",
                                rng=np.random.default_rng(1))
    for layer, W, b in zip(network.layers, model.W, model.b, strict=True):
        layer.W[...] = W.T  # the engine's W is (units, fan_in); the reference's (fan_in, units)
        layer.b[...] = b
    return network


def test_one_epoch_matches_the_engines_sgd_steps() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, WIDTHS[0])).astype(np.float32)
    y = rng.integers(0, WIDTHS[-1], size=40)
    model = HandWrittenMLP(WIDTHS, batch_size=8, seed=3)
    for b in model.b:  # non-zero biases, so a wrong bias gradient shows
        b[...] = rng.normal(0.0, 0.1, size=b.shape)
    network = engine_twin(model)
    order = rng.permutation(40)

    mean_loss = model.epoch(X, y, order, learning_rate=0.1)

    losses = []
    for start in range(0, 40, 8):
        rows = order[start : start + 8]
        losses.append(network.loss_and_gradients(X[rows].astype(np.float64), y[rows]))
        for params, grads in zip(network.params, network.grads, strict=True):
            for name in params:
                params[name] -= 0.1 * grads[name]
    assert np.isclose(mean_loss, np.mean(losses), rtol=1e-5)
    for layer, W, b in zip(network.layers, model.W, model.b, strict=True):
        np.testing.assert_allclose(W, layer.W.T, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(b, layer.b, rtol=1e-4, atol=1e-5)
    assert all(W.dtype == np.float32 for W in model.W)


def test_predict_is_the_argmax_of_the_engines_output() -> None:
    rng = np.random.default_rng(1)
    model = HandWrittenMLP(WIDTHS, batch_size=4, seed=0)
    X = rng.standard_normal((30, WIDTHS[0])).astype(np.float32)
    expected = engine_twin(model).forward(X.astype(np.float64)).argmax(axis=1)
    np.testing.assert_array_equal(model.predict(X), expected)
