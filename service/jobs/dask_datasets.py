"""Datasets on a Dask cluster: scattered once per sha256, reused by every job on the same data.

The bytes are broadcast to the workers present (workers that join later copy them from a peer when
a job needs them), under a key that names their sha256. A future the cluster lost (its workers all
died, the scheduler restarted) is scattered again. Datasets that no running job uses stay on the
cluster, most recently used first, up to IDLE_DATASETS_KEPT; older ones are released.
"""
# distributed's public API is only partly annotated.
# mypy: disallow-untyped-calls=False

from __future__ import annotations

import uuid
from collections.abc import Set
from typing import Any

from distributed import Client, Future

from service.jobs.executor import DatasetLoader

__all__ = ["IDLE_DATASETS_KEPT", "ScatteredDatasets"]

IDLE_DATASETS_KEPT = 4


class ScatteredDatasets:
    """sha256 → the future of the dataset's npz bytes on the cluster (least recently used first)."""

    def __init__(self, load_dataset: DatasetLoader) -> None:
        self._load_dataset = load_dataset
        self._futures: dict[str, Future[Any]] = {}
        self.scatter_count = 0  # datasets sent to the cluster, for tests and metrics

    def future(self, client: Client, sha256: str) -> Future[Any]:
        """The dataset on the cluster: sent once, reused while the cluster keeps it."""
        future = self._futures.pop(sha256, None)
        if future is None or future.status != "finished":
            key = f"feedforward-dataset-{sha256}-{uuid.uuid4().hex[:8]}"
            data = self._load_dataset(sha256)
            future = client.scatter({key: data}, broadcast=True, hash=False)[key]
            self.scatter_count += 1
        self._futures[sha256] = future  # most recently used last
        return future

    def forget_idle(self, in_use: Set[str]) -> None:
        """Release the least recently used datasets beyond IDLE_DATASETS_KEPT that no job needs."""
        idle = [sha for sha in self._futures if sha not in in_use]
        for sha in idle[: max(0, len(idle) - IDLE_DATASETS_KEPT)]:
            del self._futures[sha]  # the last reference: the cluster frees the data

    def clear(self) -> None:
        self._futures.clear()
