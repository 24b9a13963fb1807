"""One pass over the training rows in shuffled mini-batches, and chunked evaluation.

The hot loop per mini-batch: gather rows into the reused buffer (standardised in place), forward
and backward (`Network.loss_and_gradients`), one optimizer step (plain SGD runs its step inside
backpropagation instead, `Network.descend`). Diagnostics read the caches of the first mini-batch
of the epoch, so they cost one small copy of the weights and no extra pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from engine.batching import BatchGatherer
from engine.diagnostics import WeightSnapshot, layer_diagnostics
from engine.network import EVALUATION_CHUNK_ROWS
from engine.optimizers import Optimizer

__all__ = ["EpochOutcome", "EpochProgress", "EpochRunner", "MidEpochSaver", "count_correct",
           "evaluate"]

Array = np.ndarray


@dataclass
class EpochOutcome:
    """What one epoch produced: running means over its batches, or why it ended early."""

    train_loss: float | None = None
    train_accuracy: float | None = None
    layers: list[dict[str, Any]] = field(default_factory=list)
    cancelled: bool = False
    non_finite_loss: float | None = None  # the NaN/Inf loss that ended the epoch


@dataclass(frozen=True)
class EpochProgress:
    """An epoch between two mini-batches: the next batch's offset in the epoch's order and the
    running sums so far, which with the order (re-drawn from the Generator's state before the
    epoch's shuffle) continue the epoch exactly. Plain data, for a checkpoint's JSON."""

    next_start: int
    total_loss: float
    correct: int
    layers: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> EpochProgress:
        return cls(int(value["next_start"]), float(value["total_loss"]), int(value["correct"]),
                   list(value["layers"]))


class MidEpochSaver:
    """Asked between mini-batches whether a checkpoint is due (a clock check), then given the
    epoch's progress to save. Implemented by train(); None means epochs are never split."""

    def due(self) -> bool:
        raise NotImplementedError

    def save(self, progress: EpochProgress) -> None:
        raise NotImplementedError


def count_correct(output: Array, y: Array) -> int:
    """Rows whose predicted class equals y: argmax of softmax, or p > ½ for one logistic unit."""
    if output.shape[1] == 1:
        return int(np.count_nonzero((output[:, 0] > 0.5) == (y == 1)))
    return int(np.count_nonzero(output.argmax(axis=1) == y))


class EpochRunner:
    """Runs epochs of mini-batch training for one network, optimizer and data arrangement."""

    def __init__(
        self, network: Any, optimizer: Optimizer, gatherer: BatchGatherer, train_rows: Array,
        *, batch_size: int, l2: float, classification: bool,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.network, self.optimizer, self.gatherer = network, optimizer, gatherer
        self.train_rows, self.batch_size, self.l2 = train_rows, batch_size, l2
        self.classification, self.should_stop = classification, should_stop
        self.order = np.empty_like(train_rows)  # reshuffled in place every epoch
        self.fuses_step = optimizer.fuses_into_backprop
        self.snapshot = WeightSnapshot(network.params)

    def run(
        self, rng: np.random.Generator, learning_rate: float, diagnose: bool, *,
        resume: EpochProgress | None = None, saver: MidEpochSaver | None = None,
    ) -> EpochOutcome:
        """One epoch: a fresh permutation of the training rows from `rng`, then every batch —
        from `resume`'s batch on when given (rng then holds the state before this epoch's
        shuffle). `saver` may checkpoint the epoch between batches."""
        np.copyto(self.order, self.train_rows)
        rng.shuffle(self.order)
        network, params, grads = self.network, self.network.params, self.network.grads
        outcome, total_loss, correct, first_start = EpochOutcome(), 0.0, 0, 0
        if resume is not None:
            total_loss, correct, first_start = resume.total_loss, resume.correct, resume.next_start
            outcome.layers = resume.layers
        for start in range(first_start, self.order.shape[0], self.batch_size):
            if self.should_stop is not None and self.should_stop():
                outcome.cancelled = True
                return outcome
            if saver is not None and start > first_start and saver.due():
                saver.save(EpochProgress(start, total_loss, correct, outcome.layers))
            X_batch, y_batch = self.gatherer.gather(self.order[start : start + self.batch_size])
            first = diagnose and start == 0
            if first:
                self.snapshot.take(params)
            fused = self.fuses_step and not first  # diagnostics read the true gradients
            if fused:
                loss = self.optimizer.descend(network, X_batch, y_batch, learning_rate, self.l2)
            else:
                loss = network.loss_and_gradients(X_batch, y_batch, l2=self.l2)
            if not math.isfinite(loss):  # (a fused step has applied it: train() restores weights)
                outcome.non_finite_loss = loss
                return outcome
            if not fused:
                self.optimizer.step(params, grads, learning_rate)
            if first:
                outcome.layers = layer_diagnostics(network, self.snapshot)
            total_loss += loss * X_batch.shape[0]
            if self.classification:
                correct += count_correct(network.layers[-1].a, y_batch)
        n_rows = self.order.shape[0]
        outcome.train_loss = total_loss / n_rows
        outcome.train_accuracy = correct / n_rows if self.classification else None
        return outcome


def evaluate(
    network: Any, gatherer: BatchGatherer, rows: Array, *, classification: bool
) -> tuple[float, float | None]:
    """(mean loss, accuracy or None) over the gatherer's rows `rows`, chunk by chunk.

    The gatherer's buffer must hold at most EVALUATION_CHUNK_ROWS rows: one chunk is then a single
    forward pass, so the top layer's `a` holds that chunk's predictions afterwards.
    """
    total_loss, correct = 0.0, 0
    for start in range(0, rows.shape[0], EVALUATION_CHUNK_ROWS):
        X_chunk, y_chunk = gatherer.gather(rows[start : start + EVALUATION_CHUNK_ROWS])
        total_loss += network.evaluate_loss(X_chunk, y_chunk) * X_chunk.shape[0]
        if classification:
            correct += count_correct(network.layers[-1].a, y_chunk)
    n_rows = rows.shape[0]
    return total_loss / n_rows, (correct / n_rows if classification else None)
