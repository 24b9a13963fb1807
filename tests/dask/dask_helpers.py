"""Helpers for the Dask tests: small datasets, executor payloads, the API on Dask."""

from __future__ import annotations

import hashlib
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
from fastapi import FastAPI

from service.app import create_app
from service.jobs.dask_worker import STOP_CHECK_SECONDS
from service.jobs.executor import JobPayload
from service.jobs.protocol import arrays_to_npz
from service.settings import Settings

T = TypeVar("T")


def blobs_arrays(
    seed: int, n_samples: int = 600, n_features: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian blobs: X float64 (n_samples, n_features), y int64 class ids."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 3.0, size=(3, n_features))
    y = rng.integers(0, 3, size=n_samples).astype(np.int64)
    X = (centers[y] + rng.normal(size=(n_samples, n_features))).astype(np.float64)
    return X, y


def blobs_npz(seed: int, **shape: int) -> tuple[bytes, str]:
    """The blobs as canonical npz bytes and their sha256, as the database stores a dataset."""
    X, y = blobs_arrays(seed, **shape)
    data = arrays_to_npz({"X": X, "y": y})
    return data, hashlib.sha256(data).hexdigest()


# --- the executor on its own ---------------------------------------------------------------


class Loader:
    """A DatasetLoader over a dict that counts how often the executor asks for bytes."""

    def __init__(self, *datasets: tuple[bytes, str]) -> None:
        self.blobs = {sha: data for data, sha in datasets}
        self.calls: list[str] = []

    def __call__(self, sha256: str) -> bytes:
        self.calls.append(sha256)
        return self.blobs[sha256]


def payload(
    job_id: str,
    sha256: str,
    *,
    epochs: int,
    attempt: int = 1,
    resume_from: bytes | None = None,
    batch_size: int = 16,
    units: int = 32,
) -> JobPayload:
    spec = {
        "network": {
            "layers": [
                {"units": units, "activation": "tanh"},
                {"units": 3, "activation": "softmax"},
            ]
        },
        "optimizer": {"name": "sgd", "learning_rate": 0.05},
        "batch_size": batch_size,
        "epochs": epochs,
        "seed": 7,
    }
    return JobPayload(
        job_id=job_id,
        attempt=attempt,
        spec=spec,
        task="classification",
        n_classes=3,
        validation_split=0.2,
        datasets={"train": sha256},
        metadata={"job_id": job_id},
        resume_from=resume_from,
    )


# --- the API in-process, on the Dask executor ---------------------------------------------

BASE_URL = "http://localhost"


def dask_settings(data_dir: Path, scheduler: str, **overrides: Any) -> Settings:
    """Settings for an API whose jobs run on the test cluster: 2 at a time, fast bookkeeping."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "executor": "dask",
        "dask_scheduler": scheduler,
        "workers": 2,
        "log_level": "WARNING",
        "heartbeat_seconds": 0.5,
        "lease_seconds": 5.0,
        "poll_seconds": 0.05,
    }
    return Settings(**(values | overrides))


@asynccontextmanager
async def running_api(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its lifespan entered (migrated, supervisor on Dask) and a client on it."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=60.0) as http,
    ):
        yield app, http


async def upload_blobs(http: httpx.AsyncClient, seed: int, n_samples: int = 600) -> str:
    """Upload the blobs as a JSON dataset; returns its id."""
    X, y = blobs_arrays(seed, n_samples=n_samples)
    body = {"name": f"blobs-{seed}", "X": X.tolist(), "y": y.tolist(), "task": "classification"}
    response = await http.post("/v1/datasets", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def job_body(dataset_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "dataset_id": dataset_id,
        "validation": {"split": 0.2},
        "network": {
            "layers": [{"units": 32, "activation": "tanh"}, {"units": 3, "activation": "softmax"}]
        },
        "optimizer": {"name": "sgd", "learning_rate": 0.05},
        "batch_size": 4,
        "epochs": 10,
        "seed": 7,
    }
    return body | overrides


def epochs_allowed_after_cancel(epoch_seconds: float) -> int:
    """How many epochs a Dask job may still report after its cancel: the one in flight, plus those
    that fit in ten reads of the cancel flag (read every STOP_CHECK_SECONDS on the worker). Two
    reads would do on a quiet machine (the second covers the flag's trip through the scheduler);
    the rest is room for a loaded one, since this bound is in the job's own epochs, not seconds.
    Still a small fraction of the jobs the tests cancel (hundreds of epochs)."""
    return 1 + math.ceil(10 * STOP_CHECK_SECONDS / max(epoch_seconds, 1e-3))
