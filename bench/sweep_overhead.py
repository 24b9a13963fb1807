"""Per-job overhead of an executor: from `submit` to the first epoch report, minus the time that
epoch spent training — what a backend adds before a job makes progress. Measured on an idle
executor with 1-epoch digits jobs; the first job is reported apart (it also ships the dataset)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from bench.sweep_spec import digits_arrays, sweep_payloads
from service.jobs.dask import DaskExecutor
from service.jobs.executor import Epoch, Executor, JobPayload
from service.jobs.local import LocalExecutor
from service.jobs.protocol import arrays_to_npz
from service.settings import Settings

__all__ = ["measure_overheads"]

TIMEOUT_SECONDS = 120.0


def _payload(index: int, sha256: str) -> JobPayload:
    spec = sweep_payloads(epochs=1)[index % 8]
    return JobPayload(
        job_id=f"overhead-{index}",
        attempt=1,
        spec=spec["spec"],
        task="classification",
        n_classes=10,
        validation_split=0.2,
        datasets={"train": sha256},
    )


def _one_job(executor: Executor, payload: JobPayload) -> float:
    """Seconds from submit to the first epoch report, minus that epoch's own training time."""
    started = time.perf_counter()
    executor.submit(payload)
    overhead: float | None = None
    deadline = started + TIMEOUT_SECONDS
    while payload.job_id in executor.running() or overhead is None:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{payload.job_id} did not finish on {type(executor).__name__}")
        for event in executor.poll(0.01):
            if isinstance(event, Epoch) and overhead is None:
                training = float(event.report["metrics"]["seconds"])
                overhead = time.perf_counter() - started - training
    assert overhead is not None
    return overhead


def _measure(executor: Executor, sha256: str, samples: int) -> dict[str, Any]:
    executor.start()
    try:
        cold = _one_job(executor, _payload(0, sha256))
        warm = [_one_job(executor, _payload(index, sha256)) for index in range(1, samples + 1)]
    finally:
        executor.close()
    return {"cold": cold, "warm": warm}


def measure_overheads(scheduler: str, tmp: Path, *, samples: int) -> dict[str, dict[str, Any]]:
    data = arrays_to_npz(digits_arrays())
    sha256 = hashlib.sha256(data).hexdigest()

    def load(_sha256: str) -> bytes:
        return data

    settings = Settings(
        data_dir=tmp, executor="dask", dask_scheduler=scheduler, workers=2, blas_threads=1
    )
    local = LocalExecutor(workers=1, blas_threads=1, memory_bytes=None, load_dataset=load)
    return {
        "local": _measure(local, sha256, samples),
        "dask": _measure(DaskExecutor(settings, load_dataset=load), sha256, samples),
    }
