"""train(): learning, reproducibility, resume, early stopping, cancellation, divergence, dtypes."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import numpy as np
import pytest

from engine import blas
from engine.batching import BatchGatherer
from engine.checkpoint import Checkpoint
from engine.errors import DataError, DivergenceError, SerializationError, SpecError
from engine.optimizers import SGD
from engine.spec import TrainingSpec
from engine.training import EpochReport, TrainResult, train

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
XOR_Y = np.array([0, 1, 1, 0])


def _spec(**overrides: Any) -> TrainingSpec:
    body: dict[str, Any] = {
        "network": {"layers": [{"units": 8, "activation": "tanh"},
                               {"units": 3, "activation": "softmax"}]},
        "optimizer": {"name": "sgd", "learning_rate": 0.1},
        "batch_size": 16, "epochs": 6, "seed": 7,
    }
    body.update(overrides)
    return TrainingSpec.model_validate(body)


def _blobs(n: int = 150, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three noisy Gaussian blobs in 4-D, offset from the origin (so standardizing matters)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    centers = np.array([[3.0, 0, 1, 5], [0, 3, 1, 5], [1, 1, 4, 5]])
    return centers[y] + rng.standard_normal((n, 4)), y


def _weights(result: TrainResult) -> dict[str, np.ndarray]:
    return result.model.network.get_weights()


def _same_weights(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _collect(reports: list[EpochReport]) -> Any:
    return reports.append


# --- learning ---------------------------------------------------------------------------------


def _xor_run(seed: int) -> TrainResult:
    spec = TrainingSpec.model_validate({
        "network": {"layers": [{"units": 2, "activation": "relu"},
                               {"units": 1, "activation": "logistic"}]},
        "optimizer": {"name": "sgd", "learning_rate": 1.0},
        "batch_size": 4, "epochs": 500, "seed": seed, "dtype": "float64", "diagnostics_every": 0,
    })
    return train(spec, XOR_X, XOR_Y, task="classification", checkpoint_every=0)


def test_exercise_4_2_two_relu_units_solve_xor() -> None:
    # Seed 6 (lr 1.0, full batch, 500 epochs) finds a global minimum; about a third of seeds do.
    result = _xor_run(seed=6)
    assert np.array_equal(result.model.predict(XOR_X), XOR_Y)
    assert result.history[-1]["train_accuracy"] == 1.0


def test_xor_is_non_convex_so_restarts_help() -> None:
    # With only two ReLU units some starts end in a local minimum (one unit dead, loss ≈ 0.35);
    # restarting from other seeds, as the lecture suggests, finds a solution.
    runs = [_xor_run(seed) for seed in range(4)]
    solved = [np.array_equal(r.model.predict(XOR_X), XOR_Y) for r in runs]
    assert not all(solved)
    assert any(_xor_run(seed).history[-1]["train_accuracy"] == 1.0 for seed in range(4, 12))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    ("batch_size", "learning_rate"), [(4, 0.5), (1, 0.1)], ids=["full-batch", "per-sample"]
)
def test_the_lecture_2_4_1_tanh_network_learns_xor(
    seed: int, batch_size: int, learning_rate: float
) -> None:
    # The lecture's guard: raw 0/1 inputs, 4 tanh units, one logistic output, cross-entropy.
    # These settings reach loss < 0.05 by epoch 310 at the latest for every seed tried (0-19).
    spec = TrainingSpec.model_validate({
        "network": {"layers": [{"units": 4, "activation": "tanh"},
                               {"units": 1, "activation": "logistic"}]},
        "loss": "cross_entropy", "standardize": False,
        "optimizer": {"name": "sgd", "learning_rate": learning_rate},
        "batch_size": batch_size, "epochs": 2000, "seed": seed, "diagnostics_every": 0,
    })
    result = train(spec, XOR_X, XOR_Y, task="classification", checkpoint_every=0)
    assert len(result.history) == 2000
    assert result.history[-1]["train_loss"] < 0.05
    p = result.model.predict_proba(XOR_X)[:, 1]  # the loss recomputed here from the outputs
    assert -np.mean(XOR_Y * np.log(p) + (1 - XOR_Y) * np.log(1 - p)) < 0.05
    assert np.array_equal(result.model.predict(XOR_X), XOR_Y)


def test_training_lowers_the_loss_and_reports_every_epoch() -> None:
    X, y = _blobs()
    reports: list[EpochReport] = []
    result = train(_spec(), X, y, task="classification", on_epoch=_collect(reports))
    assert [r.epoch for r in reports] == list(range(1, 7))
    assert reports[-1].train_loss < reports[0].train_loss
    assert result.stop_reason == "max_epochs"
    assert result.history == [r.metrics() for r in reports]
    assert (result.model.predict(X) == y).mean() > 0.9


def test_reports_are_plain_json_data() -> None:
    X, y = _blobs()
    reports: list[EpochReport] = []
    train(_spec(epochs=2), X, y, task="classification", validation=0.2,
          on_epoch=_collect(reports))
    for report in reports:
        text = json.dumps([report.metrics(), report.layers, report.findings], allow_nan=False)
        assert json.loads(text)[0]["epoch"] == report.epoch
        assert set(report.metrics()) == {"epoch", "train_loss", "train_accuracy", "val_loss",
                                         "val_accuracy", "learning_rate", "seconds"}


def test_regression_accepts_a_1d_target_and_reports_no_accuracy() -> None:
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(200, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1
    spec = _spec(network={"layers": [{"units": 8, "activation": "tanh"},
                                     {"units": 1, "activation": "identity"}]}, epochs=30)
    result = train(spec, X, y, task="regression")
    assert result.history[-1]["train_accuracy"] is None
    assert result.history[-1]["train_loss"] < 0.1 * result.history[0]["train_loss"]
    assert result.model.predict(X).shape == (200, 1)


def test_batch_size_one_is_per_sample_sgd() -> None:
    X, y = _blobs(n=10)
    reports: list[EpochReport] = []
    train(_spec(batch_size=1, epochs=1), X, y, task="classification", n_classes=3,
          on_epoch=_collect(reports))
    assert reports[0].checkpoint is not None
    assert int(Checkpoint.from_bytes(reports[0].checkpoint).optimizer["t"]) == 10  # 10 steps


def test_sgd_fused_into_backpropagation_trains_the_same_network(
    sgd_path: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    X, y = _blobs()
    spec = _spec(dtype="float64", l2=0.01, diagnostics_every=2,
                 optimizer={"name": "sgd", "learning_rate": 0.3,
                            "schedule": {"name": "exponential", "gamma": 0.8}})
    folded = _weights(train(spec, X, y, task="classification"))
    monkeypatch.setattr(SGD, "fuses_into_backprop", False)  # gradients, then θ ← θ − α·g
    plain = _weights(train(spec, X, y, task="classification"))
    for name, array in folded.items():
        np.testing.assert_allclose(array, plain[name], rtol=1e-11, atol=1e-13, err_msg=name)


def test_the_learning_rate_follows_the_schedule() -> None:
    X, y = _blobs()
    spec = _spec(optimizer={"name": "sgd", "learning_rate": 0.4,
                            "schedule": {"name": "step", "step_size": 2, "gamma": 0.5}})
    result = train(spec, X, y, task="classification")
    assert [row["learning_rate"] for row in result.history] == [0.4, 0.4, 0.2, 0.2, 0.1, 0.1]


# --- reproducibility and resume ------------------------------------------------------------


@pytest.fixture(params=["numpy", "blas-beta"])
def sgd_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Plain SGD's fused step through NumPy, or through the ctypes GEMM (which big layers take)."""
    if request.param == "blas-beta":
        if not blas.fused_gemm_available():
            pytest.skip("NumPy here does not use its bundled OpenBLAS")
        monkeypatch.setattr(blas, "FUSED_MIN_ELEMENTS", 0)
    return str(request.param)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_gives_identical_weights(dtype: str, sgd_path: str) -> None:
    X, y = _blobs()
    first = train(_spec(dtype=dtype), X, y, task="classification", validation=0.2)
    second = train(_spec(dtype=dtype), X, y, task="classification", validation=0.2)
    assert _same_weights(_weights(first), _weights(second))
    other = train(_spec(dtype=dtype, seed=8), X, y, task="classification", validation=0.2)
    assert not _same_weights(_weights(first), _weights(other))


def test_a_drawn_seed_is_recorded_and_reproduces_the_run() -> None:
    X, y = _blobs()
    drawn = train(_spec(seed=None), X, y, task="classification")
    assert isinstance(drawn.seed, int)
    assert drawn.model.metadata["seed"] == drawn.seed
    again = train(_spec(seed=drawn.seed), X, y, task="classification")
    assert _same_weights(_weights(drawn), _weights(again))


@pytest.mark.parametrize("optimizer", [{"name": "sgd", "learning_rate": 0.1},
                                       {"name": "adam", "learning_rate": 0.01},
                                       {"name": "nesterov", "learning_rate": 0.05}])
def test_resume_from_a_mid_run_checkpoint_is_bit_identical(
    optimizer: dict[str, Any], sgd_path: str,
) -> None:
    X, y = _blobs()
    spec = _spec(optimizer=optimizer, epochs=6, early_stopping={"patience": 10})
    reports: list[EpochReport] = []
    whole = train(spec, X, y, task="classification", validation=0.25,
                  on_epoch=_collect(reports))
    checkpoint = reports[2].checkpoint  # after epoch 3
    assert checkpoint is not None
    resumed_reports: list[EpochReport] = []
    resumed = train(spec, X, y, task="classification", validation=0.25, resume_from=checkpoint,
                    on_epoch=_collect(resumed_reports))
    assert [r.epoch for r in resumed_reports] == [4, 5, 6]
    assert _same_weights(_weights(whole), _weights(resumed))
    assert resumed.best_epoch == whole.best_epoch
    assert _without_seconds(resumed.history) == _without_seconds(whole.history)


def _without_seconds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


@pytest.mark.parametrize("optimizer", [{"name": "sgd", "learning_rate": 0.1},
                                       {"name": "adam", "learning_rate": 0.01}])
def test_a_checkpoint_taken_inside_an_epoch_resumes_bit_identical(
    optimizer: dict[str, Any], sgd_path: str,
) -> None:
    X, y = _blobs()
    # batches of 16 over 112 training rows: 7 per epoch; diagnostics read each epoch's 1st batch
    spec = _spec(optimizer=optimizer, epochs=4, early_stopping={"patience": 10})
    inside: list[tuple[int, bytes]] = []  # checkpoint_seconds=0: between every two batches
    whole_reports: list[EpochReport] = []
    whole = train(spec, X, y, task="classification", validation=0.25,
                  on_epoch=_collect(whole_reports), checkpoint_seconds=0.0,
                  on_checkpoint=lambda done, data: inside.append((done, data)))
    assert len(inside) == 4 * 6  # never before an epoch's first batch: that is the epoch's end
    for index in (0, 8, 15, 23):  # epoch 1 batch 2, epoch 2 batch 3, epoch 3 batch 4, last one
        done, data = inside[index]
        saved = Checkpoint.from_bytes(data)
        epoch, batch = divmod(index, 6)
        assert done == saved.epoch == epoch
        assert saved.state["mid_epoch"]["next_start"] == 16 * (batch + 1)
        reports: list[EpochReport] = []
        resumed = train(spec, X, y, task="classification", validation=0.25,
                        resume_from=data, on_epoch=_collect(reports))
        assert [r.epoch for r in reports] == list(range(epoch + 1, 5))
        assert _same_weights(_weights(whole), _weights(resumed)), index
        assert _without_seconds(resumed.history) == _without_seconds(whole.history)
        # the resumed epoch's diagnostics are its first batch's, carried in the checkpoint
        assert reports[0].layers and reports[0].layers == whole_reports[epoch].layers
        assert reports[0].train_loss == whole_reports[epoch].train_loss


def test_a_run_resumed_inside_the_epoch_that_diverges_falls_back_to_the_same_weights() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((160, 4))
    y = 30 * (X @ np.array([1.0, -2.0, 3.0, 0.5]))  # unscaled targets: the loss overflows
    spec = TrainingSpec.model_validate({
        "network": {"layers": [{"units": 8, "activation": "relu"},
                               {"units": 1, "activation": "identity"}]},
        "optimizer": {"name": "sgd", "learning_rate": 0.05}, "batch_size": 16, "epochs": 6,
        "seed": 1, "standardize": False,
    })
    inside: list[bytes] = []
    whole = train(spec, X, y, task="regression", on_epoch=lambda r: None,
                  on_checkpoint=lambda _, data: inside.append(data), checkpoint_seconds=0.0)
    assert whole.stop_reason == "diverged" and inside
    for checkpoint in inside:  # each taken later in epoch 1 than the one before
        resumed = train(spec, X, y, task="regression", resume_from=checkpoint)
        assert (resumed.stop_reason, resumed.error) == (whole.stop_reason, whole.error)
        # the last whole epoch's weights (here the initial ones), not the checkpoint's own
        assert _same_weights(_weights(resumed), _weights(whole))


def test_without_a_listener_epochs_are_never_split() -> None:
    X, y = _blobs()
    reports: list[EpochReport] = []
    train(_spec(epochs=2), X, y, task="classification", on_epoch=_collect(reports),
          checkpoint_seconds=0.0)
    assert all(Checkpoint.from_bytes(r.checkpoint).state.get("mid_epoch") is None
               for r in reports if r.checkpoint is not None)


def test_resume_with_a_different_spec_is_refused() -> None:
    X, y = _blobs()
    reports: list[EpochReport] = []
    train(_spec(epochs=2), X, y, task="classification", on_epoch=_collect(reports))
    assert reports[0].checkpoint is not None
    with pytest.raises(SerializationError, match="different run"):
        train(_spec(epochs=2, batch_size=8), X, y, task="classification",
              resume_from=reports[0].checkpoint)


def test_resume_on_other_data_of_the_same_shape_is_refused() -> None:
    X, y = _blobs()
    spec = _spec(epochs=3, standardize=False)  # no standardizer to compare: the digest decides
    reports: list[EpochReport] = []
    whole = train(spec, X, y, task="classification", on_epoch=_collect(reports))
    checkpoint = reports[0].checkpoint
    assert checkpoint is not None
    with pytest.raises(SerializationError, match="different run"):
        train(spec, X[::-1] * 1.5, y, task="classification", resume_from=checkpoint)
    # a checkpoint written before runs kept the digest still resumes (jobs in flight on upgrade)
    older = Checkpoint.from_bytes(checkpoint)
    del older.state["run"]["data"]
    resumed = train(spec, X, y, task="classification", resume_from=older.to_bytes())
    assert _same_weights(_weights(resumed), _weights(whole))


def test_checkpoints_follow_checkpoint_every() -> None:
    X, y = _blobs()
    reports: list[EpochReport] = []
    train(_spec(epochs=4), X, y, task="classification", checkpoint_every=2,
          on_epoch=_collect(reports))
    assert [r.checkpoint is not None for r in reports] == [False, True, False, True]


# --- validation and early stopping --------------------------------------------------------


def test_early_stopping_restores_the_best_weights() -> None:
    X, y = _blobs(n=60)
    X_val, y_val = _blobs(n=60, seed=1)
    y_val = (y_val + 1) % 3  # validation labels that disagree: val loss rises as training fits
    spec = _spec(epochs=50, optimizer={"name": "sgd", "learning_rate": 0.5},
                 early_stopping={"patience": 3})
    reports: list[EpochReport] = []
    result = train(spec, X, y, task="classification", validation=(X_val, y_val),
                   on_epoch=_collect(reports))
    assert result.stop_reason == "patience"
    assert result.best_epoch is not None
    val_losses = [r.val_loss for r in reports]
    assert result.best_epoch == 1 + int(np.argmin(val_losses))
    assert len(reports) == result.best_epoch + 3
    best = reports[result.best_epoch - 1].checkpoint
    assert best is not None
    assert _same_weights(_weights(result), Checkpoint.from_bytes(best).weights)
    last = reports[-1].checkpoint
    assert last is not None
    assert not _same_weights(_weights(result), Checkpoint.from_bytes(last).weights)


def test_min_delta_counts_small_gains_as_no_improvement() -> None:
    X, y = _blobs()
    spec = _spec(epochs=20, early_stopping={"patience": 2, "min_delta": 1e6})
    result = train(spec, X, y, task="classification", validation=0.2)
    assert (result.stop_reason, result.best_epoch, len(result.history)) == ("patience", 1, 3)


def test_resuming_after_patience_ran_out_trains_no_further() -> None:
    X, y = _blobs()
    spec = _spec(epochs=20, early_stopping={"patience": 2, "min_delta": 1e6})
    reports: list[EpochReport] = []
    whole = train(spec, X, y, task="classification", validation=0.2, on_epoch=_collect(reports))
    assert whole.stop_reason == "patience" and len(reports) == 3
    last = reports[-1].checkpoint  # written after the epoch that exhausted the patience
    assert last is not None
    resumed_reports: list[EpochReport] = []
    resumed = train(spec, X, y, task="classification", validation=0.2, resume_from=last,
                    on_epoch=_collect(resumed_reports))
    assert resumed_reports == []
    assert (resumed.stop_reason, resumed.best_epoch) == ("patience", 1)
    assert _same_weights(_weights(resumed), _weights(whole))  # the best (epoch 1) weights


def test_every_epoch_visits_every_training_row_once_in_a_new_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    visits: list[np.ndarray] = []
    gather = BatchGatherer.gather

    def recording(self: BatchGatherer, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if idx.shape[0] <= 16:  # training batches (evaluation reads chunks of the whole split)
            visits.append(idx.copy())
        return gather(self, idx)

    monkeypatch.setattr(BatchGatherer, "gather", recording)
    X, y = _blobs(n=100)
    train(_spec(epochs=3, batch_size=16), X, y, task="classification")
    epochs = [np.concatenate(visits[k * 7 : (k + 1) * 7]) for k in range(3)]  # ⌈100/16⌉ = 7
    assert len(visits) == 21
    for order in epochs:
        assert sorted(order.tolist()) == list(range(100))
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])


def test_validation_accuracy_matches_the_model_on_the_given_set() -> None:
    X, y = _blobs()
    X_val, y_val = _blobs(n=40, seed=3)
    result = train(_spec(), X, y, task="classification", validation=(X_val, y_val))
    best_row = result.history[(result.best_epoch or 0) - 1]
    assert best_row["val_accuracy"] == (result.model.predict(X_val) == y_val).mean()


def test_early_stopping_without_validation_is_a_spec_error() -> None:
    X, y = _blobs()
    with pytest.raises(SpecError, match="needs a validation set"):
        train(_spec(early_stopping={"patience": 2}), X, y, task="classification")


def test_the_standardizer_is_fitted_on_the_training_split_and_stored() -> None:
    X, y = _blobs()
    X_val, y_val = _blobs(n=40, seed=3)
    result = train(_spec(), X, y, task="classification", validation=(X_val + 100.0, y_val))
    standardizer = result.model.standardizer
    assert standardizer is not None
    np.testing.assert_allclose(standardizer.mean, X.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(standardizer.scale, X.std(axis=0), rtol=1e-6)
    assert train(_spec(standardize=False), X, y, task="classification").model.standardizer is None


# --- control: cancel, divergence ------------------------------------------------------------


def test_should_stop_cancels_between_mini_batches() -> None:
    X, y = _blobs()
    calls: list[int] = []

    def stop_on_the_fourth_check() -> bool:
        calls.append(1)
        return len(calls) >= 4

    reports: list[EpochReport] = []
    result = train(_spec(epochs=5), X, y, task="classification",
                   should_stop=stop_on_the_fourth_check, on_epoch=_collect(reports))
    assert result.stop_reason == "cancelled"
    assert len(calls) == 4  # polled before each of the first four batches of epoch 1
    assert reports == [] and result.history == []


def test_a_huge_learning_rate_diverges_with_advice() -> None:
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(100, 3))
    y = 1e3 * (X @ np.array([3.0, -2.0, 1.0]))
    spec = _spec(network={"layers": [{"units": 8, "activation": "relu"},
                                     {"units": 1, "activation": "identity"}]},
                 optimizer={"name": "sgd", "learning_rate": 5.0}, epochs=20)
    result = train(spec, X, y, task="regression")
    assert result.stop_reason == "diverged"
    assert result.error is not None
    assert result.error.startswith("loss became ")
    assert f"at epoch {len(result.history) + 1}; lower the learning rate (now 5)" in result.error
    assert result.findings[-1]["code"] == "diverged"
    weights = _weights(result)
    assert all(np.isfinite(w).all() for w in weights.values())
    with pytest.raises(DivergenceError, match="lower the learning rate") as raised:
        result.raise_for_divergence()
    assert raised.value.epoch == len(result.history) + 1


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_learning_rate_alone_can_make_a_well_scaled_problem_diverge(task: str) -> None:
    """Standardised inputs, targets of order 1: the step size is the only thing out of scale."""
    X, labels = _blobs()
    y = labels if task == "classification" else X @ np.array([0.5, -0.5, 0.25, 0.1])
    top = {"units": 3, "activation": "softmax"} if task == "classification" else {"units": 1}
    layers = [{"units": 16, "activation": "relu"}, {"units": 16, "activation": "relu"}, top]
    sensible = train(_spec(network={"layers": layers}), X, y, task=task)
    assert sensible.stop_reason == "max_epochs"
    sensible.raise_for_divergence()  # nothing to raise
    huge = train(_spec(network={"layers": layers}, optimizer={"name": "sgd", "learning_rate": 1e3},
                       epochs=50), X, y, task=task)
    assert huge.stop_reason == "diverged", huge.history[-1]
    assert huge.error is not None and "lower the learning rate (now 1000)" in huge.error


# --- dtypes, data checks, memory ------------------------------------------------------------


def test_float32_runs_keep_float32_everywhere() -> None:
    X, y = _blobs()
    reports: list[EpochReport] = []
    result = train(_spec(dtype="float32", optimizer={"name": "adam"}), X, y,
                   task="classification", validation=0.2, on_epoch=_collect(reports))
    network = result.model.network
    f32 = np.dtype(np.float32)
    assert {a.dtype for layer in network.params for a in layer.values()} == {f32}
    assert {a.dtype for layer in network.grads for a in layer.values()} == {f32}
    assert result.model.standardizer is not None
    assert result.model.standardizer.mean.dtype == f32 == result.model.standardizer.scale.dtype
    assert result.model.predict_proba(X).dtype == f32
    assert reports[-1].checkpoint is not None
    saved = Checkpoint.from_bytes(reports[-1].checkpoint)
    assert {a.dtype for name, a in saved.optimizer.items() if name != "t"} == {f32}
    assert {a.dtype for a in saved.weights.values()} == {f32}


def test_non_finite_inputs_are_rejected() -> None:
    X, y = _blobs()
    X[5, 2] = np.nan
    with pytest.raises(DataError, match="NaN or infinite"):
        train(_spec(), X, y, task="classification")


def test_a_validation_fraction_must_lie_between_0_and_1() -> None:
    X, y = _blobs()
    with pytest.raises(DataError, match="fraction"):
        train(_spec(), X, y, task="classification", validation=1.5)


def test_mismatched_lengths_are_rejected() -> None:
    X, y = _blobs()
    with pytest.raises(DataError, match="rows"):
        train(_spec(), X, y[:-1], task="classification")


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_a_scalar_target_is_a_data_error(task: str) -> None:
    X, _ = _blobs()
    with pytest.raises(DataError, match="not a scalar"):
        train(_spec(), X, np.array(3), task=task)  # type: ignore[arg-type]


def test_complex_inputs_are_refused_not_silently_made_real() -> None:
    X, y = _blobs()
    with pytest.raises(DataError, match="real numbers, not complex128"):
        train(_spec(), X + 5j, y, task="classification")
    with pytest.raises(DataError, match="numeric"):
        train(_spec(network={"layers": [{"units": 1}]}), X, y + 1j, task="regression")


def test_training_never_copies_the_dataset() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40_000, 100), dtype=np.float32)  # 16 MB
    y = rng.integers(0, 3, size=40_000)
    spec = _spec(epochs=2, batch_size=128, dtype="float32")
    tracemalloc.start()
    try:
        train(spec, X, y, task="classification", validation=0.1, checkpoint_every=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < X.nbytes // 4


def _tampered(data: bytes, **changes: Any) -> bytes:
    saved = Checkpoint.from_bytes(data)
    for key, value in changes.items():
        if key == "last_good":
            saved.last_good = value
        elif key == "epoch":
            saved.epoch = value
        else:
            saved.state["mid_epoch"][key] = value
    return saved.to_bytes()


@pytest.mark.parametrize("change", [
    {"next_start": -3}, {"next_start": 5}, {"next_start": 10_000}, {"correct": 10_000},
    {"layers": [1, 2]}, {"layers": "ab"}, {"total_loss": "x"}, {"epoch": 3},
    {"last_good": {"W1": np.zeros((2, 2))}}, {"last_good": None},
])  # fmt: skip
def test_a_tampered_mid_epoch_checkpoint_is_a_serialization_error(change: dict[str, Any]) -> None:
    X, y = _blobs()
    spec = _spec(epochs=3)
    inside: list[bytes] = []
    train(spec, X, y, task="classification", checkpoint_seconds=0.0,
          on_checkpoint=lambda _, data: inside.append(data))
    with pytest.raises(SerializationError):
        train(spec, X, y, task="classification", resume_from=_tampered(inside[3], **change))
