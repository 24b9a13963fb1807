"""`train()`: mini-batch gradient descent (Algorithm 4.1) with validation, early stopping,
divergence detection, diagnostics, cancellation and bit-exact checkpoint/resume.

Randomness: one seed (drawn from OS entropy and recorded when the spec has none) feeds three
independent streams, `SeedSequence(seed).spawn(3)`: weight initialisation, the validation split,
and the per-epoch shuffles. Only the shuffling stream advances during training, so a checkpoint
holds its `bit_generator.state`; initialisation and split are recomputed from the seed on resume.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

import numpy as np

from engine.batching import BatchGatherer
from engine.building import draw_seed, seed_streams
from engine.checkpoint import Checkpoint
from engine.early_stopping import EarlyStopping
from engine.epoch import EpochOutcome, EpochProgress, EpochRunner, MidEpochSaver, evaluate
from engine.errors import DivergenceError, SpecError
from engine.findings import diverged_finding, findings, input_statistics, layer_findings
from engine.model import Model
from engine.network import EVALUATION_CHUNK_ROWS, Network
from engine.optimizers import make_optimizer
from engine.preprocessing import Standardizer
from engine.schedules import make_schedule
from engine.spec import TrainingSpec, resolve_loss
from engine.training_data import Task, TrainingData, Validation, prepare_data
from engine.training_resume import restore_run

__all__ = ["EpochReport", "StopReason", "TrainResult", "train"]

StopReason = Literal["patience", "max_epochs", "cancelled", "diverged"]
METRIC_KEYS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
               "learning_rate", "seconds")


@dataclass(frozen=True)
class EpochReport:
    """One finished epoch as plain data (plus the checkpoint bytes, when one was due)."""

    epoch: int
    train_loss: float | None
    train_accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    learning_rate: float
    seconds: float
    layers: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: bytes | None = None

    def metrics(self) -> dict[str, Any]:
        """The API's metrics row."""
        return {key: getattr(self, key) for key in METRIC_KEYS}


@dataclass
class TrainResult:
    model: Model
    stop_reason: StopReason
    best_epoch: int | None
    history: list[dict[str, Any]]
    findings: list[dict[str, Any]]
    error: str | None = None
    seed: int | None = None  # the seed actually used (drawn when the spec had none)

    def raise_for_divergence(self) -> None:
        """For callers that want an exception: DivergenceError (its message says at which epoch
        and what to try) when training diverged; nothing otherwise."""
        if self.stop_reason == "diverged":
            epoch = int(self.history[-1]["epoch"]) + 1 if self.history else 1
            raise DivergenceError(self.error or "training diverged", epoch=epoch)


def train(
    spec: TrainingSpec, X: Any, y: Any, *, task: Task, n_classes: int | None = None,
    validation: Validation = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume_from: bytes | None = None,
    checkpoint_every: int = 1,
    metadata: dict[str, Any] | None = None,
    on_checkpoint: Callable[[int, bytes], None] | None = None,
    checkpoint_seconds: float = 30.0,
) -> TrainResult:
    """Train a network on X, y as `spec` says; see the module docstring and EpochReport.

    `validation` is a fraction of the rows (split once with the seeded Generator) or an (X, y)
    pair; `on_epoch` receives each finished epoch; `should_stop` is polled between mini-batches;
    `resume_from` continues from an EpochReport's checkpoint, ending bit-identical to a run that
    never stopped. With `on_checkpoint`, an epoch still running `checkpoint_seconds` after the last
    checkpoint is checkpointed between two mini-batches too (long epochs lose at most that much
    work): `on_checkpoint(epochs_done, bytes)`; those bytes resume like the others, inside the
    epoch after `epochs_done`.

    Raises DataError / SpecError for unusable data; a diverging run returns with stop_reason
    "diverged", the last finite weights and an `error` that says at which epoch and what to try
    (`raise_for_divergence()` turns it into a DivergenceError).
    """
    checkpoint = None if resume_from is None else Checkpoint.from_bytes(resume_from)
    seed = _resolve_seed(spec, checkpoint)
    init_rng, split_rng, shuffle_rng = seed_streams(seed)
    data = prepare_data(spec, X, y, task=task, n_classes=n_classes, validation=validation,
                        split_rng=split_rng)
    network = Network.from_spec(spec.network, data.X.shape[1], loss=resolve_loss(spec, task),
                                dtype=spec.dtype, rng=init_rng)
    session = _Session(spec, data, network, task, seed, shuffle_rng, should_stop)
    if checkpoint is not None:
        restore_run(session, checkpoint)
    # Overflow on the way to NaN/Inf is how divergence starts; it is detected and reported by
    # the loop (stop_reason "diverged"), so NumPy's floating-point warnings would only be noise.
    with np.errstate(all="ignore"):
        # checkpoints travel in the EpochReports: without a listener there is no one to keep them
        saver = None if on_checkpoint is None else _TimedCheckpoints(
            session, on_checkpoint, checkpoint_seconds)
        stop_reason, error = session.loop(on_epoch, checkpoint_every if on_epoch else 0, saver)
    return session.result(stop_reason, error, metadata or {})


def _resolve_seed(spec: TrainingSpec, checkpoint: Checkpoint | None) -> int:
    if checkpoint is not None:
        if spec.seed is not None and spec.seed != checkpoint.seed:
            raise SpecError(f"the checkpoint was made with seed {checkpoint.seed}, "
                             f"not {spec.seed}; resume with the same spec")
        return checkpoint.seed
    if spec.seed is not None:
        return spec.seed
    return draw_seed()


class _Session:
    """The state of one training run between epochs (also what a checkpoint saves)."""

    def __init__(
        self, spec: TrainingSpec, data: TrainingData, network: Network, task: Task, seed: int,
        shuffle_rng: np.random.Generator, should_stop: Callable[[], bool] | None,
    ) -> None:
        self.spec, self.data, self.network, self.task, self.seed = spec, data, network, task, seed
        self.shuffle_rng, self.classification = shuffle_rng, task == "classification"
        # fitted on the training rows' moments, computed once with the data
        self.standardizer = (Standardizer.from_moments(data.moments, network.dtype)
                             if spec.standardize else None)
        self.prepare = None if self.standardizer is None else self._standardize
        self.optimizer = make_optimizer(spec.optimizer, network.params)
        self.schedule = make_schedule(spec.optimizer.schedule, spec.optimizer.learning_rate,
                                      spec.epochs)
        es = spec.early_stopping
        self.stopping = EarlyStopping(es.patience if es else None, es.min_delta if es else 0.0)
        self.input_stats = None if spec.standardize else input_statistics(
            data.moments.minimum, data.moments.maximum, data.moments.mean, data.moments.std)
        self.runner = EpochRunner(
            network, self.optimizer, BatchGatherer(data.X, data.y, spec.batch_size, self.prepare),
            data.train_rows, batch_size=spec.batch_size, l2=spec.l2,
            classification=self.classification, should_stop=should_stop)
        self.val_gatherer = None if data.X_val is None or data.y_val is None else BatchGatherer(
            data.X_val, data.y_val, min(EVALUATION_CHUNK_ROWS, data.X_val.shape[0]), self.prepare)
        self.epoch = 0
        self.resume_progress: EpochProgress | None = None  # set by restore_run mid-epoch
        self.history: list[dict[str, Any]] = []
        self.latest_layers: list[dict[str, Any]] = []
        self.last_good = network.get_weights()
        if spec.early_stopping is not None and self.val_gatherer is None:
            raise SpecError("early stopping needs a validation set: pass validation= a fraction "
                            "of the rows or an (X, y) pair, or drop early_stopping")

    def _standardize(self, batch: np.ndarray) -> None:
        assert self.standardizer is not None
        self.standardizer.transform(batch, out=batch)

    # --- the epoch loop ------------------------------------------------------------------------

    def loop(self, on_epoch: Callable[[EpochReport], None] | None, checkpoint_every: int,
             saver: _TimedCheckpoints | None = None) -> tuple[StopReason, str | None]:
        if self.stopping.exhausted:  # resumed from the checkpoint of an epoch that stopped early
            return "patience", None
        for epoch in range(self.epoch + 1, self.spec.epochs + 1):
            started = time.perf_counter()
            learning_rate = self.schedule.learning_rate(epoch)
            every = self.spec.diagnostics_every
            if saver is not None:
                saver.epoch_rng_state = dict(self.shuffle_rng.bit_generator.state)
            resume, self.resume_progress = self.resume_progress, None
            outcome = self.runner.run(self.shuffle_rng, learning_rate,
                                      every > 0 and (epoch - 1) % every == 0,
                                      resume=resume, saver=saver)
            if outcome.cancelled:
                return "cancelled", None
            error, val_loss, val_accuracy = self._check_and_validate(epoch, learning_rate, outcome)
            if error is not None:
                self.network.set_weights(self.last_good)  # the end of the last finite epoch
                return "diverged", error
            report = self._finish_epoch(epoch, learning_rate, outcome, val_loss, val_accuracy,
                                        time.perf_counter() - started, checkpoint_every)
            if saver is not None and report.checkpoint is not None:
                saver.restart_clock()
            if on_epoch is not None:
                on_epoch(report)
            if self.stopping.exhausted:
                return "patience", None
        return "max_epochs", None

    def _check_and_validate(
        self, epoch: int, learning_rate: float, outcome: EpochOutcome
    ) -> tuple[str | None, float | None, float | None]:
        """(divergence message or None, validation loss, validation accuracy) after an epoch."""
        error = self._divergence(epoch, learning_rate, outcome)
        if error is not None or self.val_gatherer is None or self.data.val_rows is None:
            return error, None, None
        val_loss, val_accuracy = evaluate(self.network, self.val_gatherer, self.data.val_rows,
                                          classification=self.classification)
        if not math.isfinite(val_loss):
            error = self._divergence_message("validation loss", val_loss, epoch, learning_rate)
        return error, val_loss, val_accuracy

    def _finish_epoch(self, epoch: int, learning_rate: float, outcome: EpochOutcome,
                      val_loss: float | None, val_accuracy: float | None, seconds: float,
                      checkpoint_every: int) -> EpochReport:
        self.epoch = epoch
        if val_loss is not None:
            self.stopping.update(epoch, val_loss, self.network.get_weights)
        self.last_good = self.network.get_weights()
        if outcome.layers:
            self.latest_layers = outcome.layers
        epoch_findings = layer_findings(outcome.layers)
        if self.input_stats is not None:
            epoch_findings += findings([], self.input_stats)
        report = EpochReport(epoch, outcome.train_loss, outcome.train_accuracy, val_loss,
                             val_accuracy, learning_rate, seconds, outcome.layers, epoch_findings)
        self.history.append(report.metrics())
        if checkpoint_every > 0 and epoch % checkpoint_every == 0:
            report = replace(report, checkpoint=self.checkpoint().to_bytes())
        return report

    # --- divergence ----------------------------------------------------------------------------

    def _divergence(self, epoch: int, learning_rate: float, outcome: EpochOutcome) -> str | None:
        """The error message when the loss or the weights are no longer finite, else None."""
        if outcome.non_finite_loss is not None:
            return self._divergence_message("loss", outcome.non_finite_loss, epoch, learning_rate)
        for layer_params in self.network.params:
            for array in layer_params.values():
                if not np.isfinite(array).all():
                    return self._divergence_message("weights", math.nan, epoch, learning_rate)
        return None

    def _divergence_message(self, what: str, value: float, epoch: int, lr: float) -> str:
        kind = "NaN" if math.isnan(value) else "infinite"
        advice = f"lower the learning rate (now {lr:g})"
        if not self.spec.standardize:
            advice += " or standardize the inputs"
        elif not self.classification:
            advice += " or scale the targets"
        return f"{what} became {kind} at epoch {epoch}; {advice}"

    # --- checkpoint and result -----------------------------------------------------------------

    def checkpoint(self, mid_epoch: tuple[EpochProgress, dict[str, Any]] | None = None
                   ) -> Checkpoint:
        """After epoch `self.epoch`; or inside the next one, given its progress and the
        Generator's state before that epoch's shuffle (the epoch's order is drawn again)."""
        state = {"early_stopping": self.stopping.state(), "history": self.history,
                 "latest_layers": self.latest_layers, "run": self.run_identity}
        rng_state = dict(self.shuffle_rng.bit_generator.state)
        if mid_epoch is not None:
            progress, rng_state = mid_epoch
            state["mid_epoch"] = progress.to_json()
        return Checkpoint(
            epoch=self.epoch, seed=self.seed, weights=self.network.get_weights(),
            optimizer=self.optimizer.state_arrays(), rng_state=rng_state, state=state,
            best_weights=self.stopping.best_weights,
            mean=None if self.standardizer is None else self.standardizer.mean,
            scale=None if self.standardizer is None else self.standardizer.scale,
            last_good=None if mid_epoch is None else self.last_good,
        )

    @cached_property  # fixed for the run; every checkpoint (one per epoch) carries it
    def run_identity(self) -> dict[str, Any]:
        """What must match for a checkpoint to continue this run: spec, task, data shape, and a
        digest of the training rows' per-feature moments (other data of the same shape differs
        there, standardised or not; the moments are computed with the data anyway)."""
        moments = self.data.moments
        digest = hashlib.sha256()
        for array in (moments.mean, moments.std, moments.minimum, moments.maximum):
            digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
        return {"spec": self.spec.model_dump(mode="json", exclude={"seed"}), "task": self.task,
                "n_features": int(self.data.X.shape[1]), "n_train": int(self.data.train_rows.size),
                "data": digest.hexdigest()}

    def result(self, stop_reason: StopReason, error: str | None,
               metadata: dict[str, Any]) -> TrainResult:
        if self.stopping.best_weights is not None:
            self.network.set_weights(self.stopping.best_weights)
        run_findings = findings([self.latest_layers], self.input_stats)
        if error is not None:
            run_findings.append(diverged_finding(error))
        model = Model(self.network, self.standardizer, self.task,
                      {**metadata, "seed": self.seed, "l2": self.spec.l2})
        return TrainResult(model, stop_reason, self.stopping.best_epoch, list(self.history),
                           run_findings, error, self.seed)


class _TimedCheckpoints(MidEpochSaver):
    """Mid-epoch checkpoints `seconds` after the last checkpoint of any kind, to `deliver`
    (with the number of whole epochs done)."""

    def __init__(self, session: _Session, deliver: Callable[[int, bytes], None], seconds: float
                 ) -> None:
        self.session, self.deliver, self.seconds = session, deliver, seconds
        self.epoch_rng_state: dict[str, Any] = {}
        self.restart_clock()

    def restart_clock(self) -> None:
        self.next_at = time.monotonic() + self.seconds

    def due(self) -> bool:
        return time.monotonic() >= self.next_at

    def save(self, progress: EpochProgress) -> None:
        checkpoint = self.session.checkpoint((progress, self.epoch_rng_state))
        self.deliver(checkpoint.epoch, checkpoint.to_bytes())
        self.restart_clock()
