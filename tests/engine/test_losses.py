"""Losses: the mean value over the batch and its delta ∂L/∂z (or ∂L/∂a for MSE), checked by hand and
by central differences; cross-entropy stays finite and exact at logits of ±1000."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import DataError, SpecError
from engine.losses import (
    LOSSES,
    LogisticCrossEntropy,
    Loss,
    MeanSquaredError,
    SoftmaxCrossEntropy,
    make_loss,
)

H = 1e-6


Arrays = tuple[float, np.ndarray, np.ndarray]


def value_and_delta(loss: Loss, z: np.ndarray, y: np.ndarray) -> Arrays:
    a, delta = np.empty_like(z), np.empty_like(z)
    if not loss.fused:
        np.copyto(a, z)  # MSE on an identity output: a = z
    value = loss.value_and_delta(z, a, y, delta)
    return value, a, delta


def numeric_delta(loss: Loss, z: np.ndarray, y: np.ndarray) -> np.ndarray:
    numeric = np.zeros_like(z)
    for index in np.ndindex(*z.shape):
        shifted = z.copy()
        shifted[index] += H
        plus = value_and_delta(loss, shifted, y)[0]
        shifted[index] -= 2 * H
        minus = value_and_delta(loss, shifted, y)[0]
        numeric[index] = (plus - minus) / (2 * H)
    return numeric


def test_softmax_cross_entropy_is_minus_log_probability_of_the_class() -> None:
    z = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    y = np.array([1, 0])
    value, p, delta = value_and_delta(SoftmaxCrossEntropy(), z, y)
    expected_p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(p, expected_p, rtol=1e-14)
    assert value == pytest.approx(-np.mean(np.log(expected_p[[0, 1], y])), rel=1e-14)
    onehot = np.eye(3)[y]
    np.testing.assert_allclose(delta, (expected_p - onehot) / 2, rtol=1e-13)


def test_logistic_cross_entropy_is_the_binary_log_loss() -> None:
    z = np.array([[0.3], [-1.2], [2.0]])
    y = np.array([1, 0, 0])
    value, p, delta = value_and_delta(LogisticCrossEntropy(), z, y)
    sigma = 1 / (1 + np.exp(-z[:, 0]))
    np.testing.assert_allclose(p[:, 0], sigma, rtol=1e-14)
    expected = -np.mean(y * np.log(sigma) + (1 - y) * np.log(1 - sigma))
    assert value == pytest.approx(expected, rel=1e-13)
    np.testing.assert_allclose(delta[:, 0], (sigma - y) / 3, rtol=1e-13)


def test_mse_is_half_the_squared_error_averaged_over_rows() -> None:
    a = np.array([[1.0, 2.0], [0.0, -1.0]])
    y = np.array([[0.5, 2.0], [1.0, 1.0]])
    value, _, delta = value_and_delta(MeanSquaredError(), a, y)
    assert value == pytest.approx(0.5 * (0.25 + 0 + 1 + 4) / 2)
    np.testing.assert_allclose(delta, (a - y) / 2)


def test_float32_mse_of_large_but_finite_errors_stays_finite() -> None:
    a = np.zeros((4, 1), dtype=np.float32)
    y = np.full((4, 1), 1e19, dtype=np.float32)  # Σ (1e19)² = 4e38: beyond float32
    value, _, delta = value_and_delta(MeanSquaredError(), a, y)
    assert value == pytest.approx(0.5 * 1e38, rel=1e-6)
    assert delta.dtype == np.float32 and np.isfinite(delta).all()


@pytest.mark.parametrize(
    ("loss", "y"),
    [
        (SoftmaxCrossEntropy(), np.array([2, 0, 1, 1])),
        (LogisticCrossEntropy(), np.array([1, 0, 0, 1])),
        (MeanSquaredError(), np.arange(12.0).reshape(4, 3) / 7),
    ],
    ids=["softmax_ce", "logistic_ce", "mse"],
)
def test_delta_matches_central_differences_of_the_mean_loss(loss: Loss, y: np.ndarray) -> None:
    width = 1 if isinstance(loss, LogisticCrossEntropy) else 3
    z = np.random.default_rng(5).normal(size=(4, width)) * 2
    _, _, delta = value_and_delta(loss, z, y)
    np.testing.assert_allclose(delta, numeric_delta(loss, z, y), rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_cross_entropy_is_stable_at_logits_of_1000(dtype: str) -> None:
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 0.0]], dtype=dtype)
    y = np.array([1, 1])
    value, p, delta = value_and_delta(SoftmaxCrossEntropy(), z, y)
    # Row 0 puts all mass on class 0 but the label is 1: −log p₁ = 1000 − (−1000) = 2000.
    # Row 1 is right with certainty: loss 0. Mean: 1000.
    assert np.isfinite(value)
    assert value == pytest.approx(1000.0, rel=1e-6)
    assert p.dtype == delta.dtype == np.dtype(dtype)
    np.testing.assert_allclose(delta, [[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]], atol=1e-7)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_logistic_cross_entropy_is_stable_at_logits_of_1000(dtype: str) -> None:
    z = np.array([[1000.0], [-1000.0], [1000.0]], dtype=dtype)
    y = np.array([0, 0, 1])
    value, p, delta = value_and_delta(LogisticCrossEntropy(), z, y)
    # Only the first row is wrong: −log(1 − σ(1000)) = 1000; mean over 3 rows.
    assert value == pytest.approx(1000.0 / 3, rel=1e-6)
    assert delta.dtype == np.dtype(dtype)
    np.testing.assert_allclose(delta[:, 0], [1 / 3, 0.0, 0.0], atol=1e-7)


def test_losses_registry_and_output_pairing() -> None:
    assert set(LOSSES) == {"cross_entropy", "mse"}
    assert isinstance(make_loss("cross_entropy", "softmax", 3), SoftmaxCrossEntropy)
    assert isinstance(make_loss("cross_entropy", "logistic", 1), LogisticCrossEntropy)
    assert isinstance(make_loss("mse", "identity", 2), MeanSquaredError)


@pytest.mark.parametrize(
    ("loss", "activation", "units"),
    [("cross_entropy", "tanh", 3), ("cross_entropy", "logistic", 2), ("mse", "softmax", 3),
     ("hinge", "identity", 1)],
)
def test_unusable_loss_and_output_pairs_are_spec_errors(
    loss: str, activation: str, units: int
) -> None:
    with pytest.raises(SpecError):
        make_loss(loss, activation, units)


@pytest.mark.parametrize("label", [3, -1])
def test_softmax_cross_entropy_rejects_class_indices_out_of_range(label: int) -> None:
    z = np.zeros((2, 3))
    with pytest.raises(DataError, match=r"0\.\.2"):
        value_and_delta(SoftmaxCrossEntropy(), z, np.array([0, label]))
