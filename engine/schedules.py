"""Learning-rate schedules, evaluated once per epoch (epochs numbered from 1).

With t = epoch − 1 the number of epochs already completed (so the first epoch always uses α₀):

    constant      α = α₀
    step          α = α₀ · γ^⌊t / step_size⌋
    exponential   α = α₀ · γ^t
    cosine        α = α_min + ½(α₀ − α_min)(1 + cos(π t / epochs))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.spec import CosineSchedule, ExponentialSchedule, ScheduleSpec, StepSchedule

__all__ = [
    "ConstantRate",
    "CosineRate",
    "ExponentialRate",
    "Schedule",
    "StepRate",
    "make_schedule",
]


@dataclass(frozen=True)
class Schedule:
    """A learning rate per epoch; subclasses give the formula."""

    base_lr: float

    def learning_rate(self, epoch: int) -> float:
        if epoch < 1:
            raise ValueError(f"epochs are numbered from 1; got {epoch}")
        return self._rate(epoch - 1)

    def _rate(self, completed: int) -> float:
        raise NotImplementedError


@dataclass(frozen=True)
class ConstantRate(Schedule):
    def _rate(self, completed: int) -> float:
        return self.base_lr


@dataclass(frozen=True)
class StepRate(Schedule):
    step_size: int = 10
    gamma: float = 0.1

    def _rate(self, completed: int) -> float:
        return self.base_lr * self.gamma ** (completed // self.step_size)


@dataclass(frozen=True)
class ExponentialRate(Schedule):
    gamma: float = 0.95

    def _rate(self, completed: int) -> float:
        return self.base_lr * self.gamma**completed


@dataclass(frozen=True)
class CosineRate(Schedule):
    epochs: int = 1
    min_lr: float = 0.0

    def _rate(self, completed: int) -> float:
        fraction = min(completed, self.epochs) / self.epochs
        span = self.base_lr - self.min_lr
        return self.min_lr + 0.5 * span * (1.0 + math.cos(math.pi * fraction))


def make_schedule(spec: ScheduleSpec | None, base_lr: float, epochs: int) -> Schedule:
    """The schedule a spec names (None = constant), starting at `base_lr`, over `epochs` epochs."""
    base_lr = float(base_lr)
    if spec is None:
        return ConstantRate(base_lr)
    if isinstance(spec, StepSchedule):
        return StepRate(base_lr, step_size=spec.step_size, gamma=spec.gamma)
    if isinstance(spec, ExponentialSchedule):
        return ExponentialRate(base_lr, gamma=spec.gamma)
    if isinstance(spec, CosineSchedule):
        return CosineRate(base_lr, epochs=max(int(epochs), 1), min_lr=spec.min_lr)
    raise TypeError(f"not a schedule spec: {type(spec).__name__}")
