"""Mini-batch plumbing: seeded splits, chunked moments, gathering into reused buffers."""

from __future__ import annotations

import numpy as np
import pytest

from engine.batching import STATS_CHUNK_ROWS, BatchGatherer, feature_moments, split_rows


def test_split_is_a_seeded_partition() -> None:
    train_rows, val_rows = split_rows(100, 0.2, np.random.default_rng(5))
    assert val_rows.size == 20
    assert np.array_equal(np.sort(np.concatenate([train_rows, val_rows])), np.arange(100))
    again, _ = split_rows(100, 0.2, np.random.default_rng(5))
    assert np.array_equal(train_rows, again)


def test_split_rejects_fractions_outside_0_1() -> None:
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        split_rows(10, 1.0, np.random.default_rng(0))


def test_moments_over_several_chunks_match_numpy() -> None:
    rng = np.random.default_rng(0)
    X = (3 * rng.standard_normal((2 * STATS_CHUNK_ROWS + 17, 5)) + 2).astype(np.float32)
    rows = np.arange(0, X.shape[0], 3)
    moments = feature_moments(X, rows)
    subset = X[rows].astype(np.float64)
    np.testing.assert_allclose(moments.mean, subset.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(moments.std, subset.std(axis=0), rtol=1e-12)
    assert np.array_equal(moments.minimum, subset.min(axis=0))
    assert np.array_equal(moments.maximum, subset.max(axis=0))


def test_gather_fills_the_same_buffer_every_time() -> None:
    X = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10)
    gatherer = BatchGatherer(X, y, batch_size=4, prepare=lambda batch: batch.__imul__(2))
    first, first_y = gatherer.gather(np.array([3, 1, 7, 0]))
    assert np.array_equal(first, 2 * X[[3, 1, 7, 0]]) and np.array_equal(first_y, [3, 1, 7, 0])
    last, _ = gatherer.gather(np.array([9, 2]))  # a partial last batch: a view of the buffer
    assert np.shares_memory(first, last) and last.shape == (2, 2)
    assert np.array_equal(X, np.arange(20, dtype=np.float32).reshape(10, 2))  # data untouched
