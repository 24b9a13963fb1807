"""Learning-rate schedules: values per epoch, the first epoch always at the base rate."""

from __future__ import annotations

import math

import pytest

from engine.schedules import make_schedule
from engine.spec import CosineSchedule, ExponentialSchedule, StepSchedule


def test_no_schedule_keeps_the_base_rate() -> None:
    schedule = make_schedule(None, 0.1, epochs=5)
    assert [schedule.learning_rate(e) for e in (1, 3, 5, 50)] == [0.1] * 4


def test_step_schedule_drops_by_gamma_every_step_size_epochs() -> None:
    schedule = make_schedule(StepSchedule(step_size=2, gamma=0.5), 0.8, epochs=10)
    rates = [schedule.learning_rate(e) for e in range(1, 7)]
    assert rates == pytest.approx([0.8, 0.8, 0.4, 0.4, 0.2, 0.2])


def test_exponential_schedule_multiplies_by_gamma_each_epoch() -> None:
    schedule = make_schedule(ExponentialSchedule(gamma=0.9), 1.0, epochs=10)
    assert schedule.learning_rate(1) == 1.0
    assert schedule.learning_rate(4) == pytest.approx(0.9**3)


def test_cosine_schedule_falls_from_base_to_min_over_the_run() -> None:
    schedule = make_schedule(CosineSchedule(min_lr=0.01), 0.11, epochs=4)
    rates = [schedule.learning_rate(e) for e in range(1, 6)]
    # t = epoch − 1: 0.01 + 0.05·(1 + cos(π t / 4))
    expected = [0.01 + 0.05 * (1 + math.cos(math.pi * t / 4)) for t in range(4)] + [0.01]
    assert rates == pytest.approx(expected)
    assert rates[0] == pytest.approx(0.11)
    assert rates == sorted(rates, reverse=True)


def test_epochs_are_numbered_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        make_schedule(None, 0.1, epochs=1).learning_rate(0)
