"""A Dask worker's decoded datasets: one entry per (sha256, dtype), in the job's dtype, LRU."""

from __future__ import annotations

import numpy as np

from service.jobs.dask_worker import DECODED_DATASETS_KEPT, _DecodedDatasets, _job_arrays
from service.jobs.protocol import arrays_to_npz

DATA = arrays_to_npz({"X": np.arange(12.0).reshape(4, 3), "y": np.array([0, 1, 0, 1])})


def test_arrays_come_in_the_jobs_dtype_and_each_dtype_is_kept_apart() -> None:
    decoded = _DecodedDatasets()
    single = decoded.get("a", DATA, "float32")
    assert single["X"].dtype == np.float32
    assert decoded.get("a", DATA, "float32") is single  # decoded once
    double = decoded.get("a", DATA, "float64")
    assert double["X"].dtype == np.float64
    np.testing.assert_array_equal(double["X"], np.arange(12.0).reshape(4, 3))
    assert decoded.get("a", DATA, "float32") is single  # the float64 entry did not replace it


def test_the_least_recently_used_dataset_goes_first() -> None:
    decoded = _DecodedDatasets()
    kept = [decoded.get(f"d{i}", DATA, "float32") for i in range(DECODED_DATASETS_KEPT)]
    decoded.get("d0", DATA, "float32")  # d0 used again: d1 is now the least recently used
    decoded.get("new", DATA, "float32")
    assert decoded.get("d0", DATA, "float32") is kept[0]
    assert decoded.get("d1", DATA, "float32") is not kept[1]  # evicted, decoded again


def test_job_arrays_follow_the_spec_dtype() -> None:
    header = {"datasets": {"train": "t", "validation": "v"}, "spec": {"dtype": "float64"}}
    arrays = _job_arrays(header, {"t": DATA, "v": DATA})
    assert set(arrays) == {"X", "y", "X_val", "y_val"}
    assert arrays["X"].dtype == arrays["X_val"].dtype == np.float64
    default = _job_arrays({"datasets": {"train": "t"}, "spec": {}}, {"t": DATA})
    assert default["X"].dtype == np.float32  # TrainingSpec's default dtype
