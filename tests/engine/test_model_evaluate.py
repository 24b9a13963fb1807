"""Model.evaluate: the mean loss and the predictions of the same rows from one forward pass."""

from __future__ import annotations

import numpy as np
import pytest

import engine.network as network_module
from tests.engine.test_model_serialization import make_model, raw_inputs


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
