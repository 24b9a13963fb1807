"""The service benchmark's phases, each against the running server (see bench/service.py)."""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench import _data
from bench._harness import run_child
from bench._servers import Server
from bench._service_client import latencies, submit, timed_job, wait_for
from bench._service_tasks import job_body
from service.jobs.worker_boot import WORKER_NICENESS

Log = Callable[[str], None]
JOB_TIMEOUT_SECONDS = 1800.0
LEARNING_RATE = 0.05
LOAD_EPOCHS = 1000  # the load jobs are cancelled once the latencies are measured


def run_all(args: argparse.Namespace, client: httpx.Client, dataset_id: str, digits_id: str,
            scratch: Path, log: Log) -> dict[str, Any]:
    training = training_overhead(args, client, dataset_id, log)
    under_load = get_latency(args, client, dataset_id, training["job_ids"], log)
    digits_model = timed_job(client, digits_body(digits_id), JOB_TIMEOUT_SECONDS)["model_id"]
    with Server("bench._bare_app:app", {}, scratch / "bare.log", "/healthz") as bare, \
            httpx.Client(base_url=bare.url, timeout=120.0) as bare_client:
        large = predictions(args, client, bare_client, training["model_id"],
                            _large_body(args.predict_rows), args.large_requests, log)
        large_npy = predictions(args, client, bare_client, training["model_id"],
                                _large_npy_body(args.predict_rows), args.large_requests, log)
        small = predictions(args, client, bare_client, digits_model, _small_body(),
                            args.small_requests, log)
    return {"training": training, "get": under_load, "large": large, "large_npy": large_npy,
            "small": small}


def worker_blas_threads(workers: int) -> int:
    """What the service gives each worker by default: cores ÷ workers, at least 1."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def training_overhead(args: argparse.Namespace, client: httpx.Client, dataset_id: str,
                      log: Log) -> dict[str, Any]:
    """Interleaved: the engine alone in a fresh child, the same job through the service."""
    body = {**job_body(args.samples, args.epochs, args.batch, LEARNING_RATE, 0),
            "dataset_id": dataset_id}
    warm_ids = [submit(client, {**body, "epochs": 1}) for _ in range(args.workers)]
    cold = [wait_for(client, job_id, {"succeeded"}, JOB_TIMEOUT_SECONDS) for job_id in warm_ids]
    log(f"warm-up jobs done ({[job['status'] for job in cold]})")
    threads = worker_blas_threads(args.workers)
    params = {"n_samples": args.samples, "epochs": args.epochs, "batch_size": args.batch,
              "learning_rate": LEARNING_RATE, "niceness": WORKER_NICENESS}
    engine, service = [], []
    for repetition in range(args.repetitions):
        for side in (("engine", "service") if repetition % 2 == 0 else ("service", "engine")):
            if side == "engine":
                engine.append(run_child("engine_job", params, threads=threads))
            else:
                service.append(timed_job(client, body, JOB_TIMEOUT_SECONDS))
            log(f"  [{repetition + 1}/{args.repetitions}] {side}: "
                f"{(engine if side == 'engine' else service)[-1]['seconds']:.2f} s")
    return {"engine": engine, "service": service, "threads": threads,
            "niceness": WORKER_NICENESS,
            "model_id": service[-1]["model_id"],
            "job_ids": [run["job"]["id"] for run in service]}


def get_latency(args: argparse.Namespace, client: httpx.Client, dataset_id: str,
                finished: list[str], log: Log) -> dict[str, Any]:
    """GET /v1/jobs/{id}: workers idle, then while every worker trains a long job."""
    idle = latencies(client, "GET", [f"/v1/jobs/{job_id}" for job_id in finished],
                     args.get_requests)["client"]
    body = {**job_body(args.samples, LOAD_EPOCHS, args.batch, LEARNING_RATE, 1),
            "dataset_id": dataset_id}
    busy_ids = [submit(client, body) for _ in range(args.workers)]
    for job_id in busy_ids:
        wait_for(client, job_id, {"running"}, JOB_TIMEOUT_SECONDS)
    log(f"{len(busy_ids)} workers training; timing {args.get_requests} GETs")
    busy = latencies(client, "GET", [f"/v1/jobs/{job_id}" for job_id in busy_ids],
                     args.get_requests)["client"]
    still_running = [client.get(f"/v1/jobs/{job_id}").json()["status"] == "running"
                     for job_id in busy_ids]
    for job_id in busy_ids:
        client.post(f"/v1/jobs/{job_id}/cancel")
    for job_id in busy_ids:
        wait_for(client, job_id, {"cancelled", "succeeded"}, JOB_TIMEOUT_SECONDS)
    return {"idle": idle, "busy": busy, "load_held": all(still_running),
            "busy_workers": len(busy_ids)}


def digits_body(digits_id: str) -> dict[str, Any]:
    return {"dataset_id": digits_id, "epochs": 5, "batch_size": 32, "seed": 0,
            "network": {"layers": [{"units": 64, "activation": "tanh"},
                                   {"units": 10, "activation": "softmax"}]},
            "optimizer": {"name": "sgd", "learning_rate": LEARNING_RATE}}


def _large_body(rows: int) -> tuple[bytes, list[int]]:
    """`rows` × 784 inputs with 4 decimals, as JSON: (body, shape)."""
    X, _ = _data.mnist_like(rows, seed=1)
    body = json.dumps({"inputs": np.round(X.astype(np.float64), 4).tolist()})
    return body.encode(), list(X.shape)


def _large_npy_body(rows: int) -> tuple[bytes, list[int]]:
    """The same rows as one base64 float32 .npy in `inputs_npy` (the bulk form): (body, shape)."""
    X, _ = _data.mnist_like(rows, seed=1)
    buffer = io.BytesIO()
    np.save(buffer, X, allow_pickle=False)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return json.dumps({"inputs_npy": encoded}).encode(), list(X.shape)


def _small_body() -> tuple[bytes, list[int]]:
    """One row of the digits (64 features): (body, shape)."""
    X, _, _, _ = _data.digits()
    return json.dumps({"inputs": X[:1].tolist()}).encode(), [1, X.shape[1]]


def predictions(args: argparse.Namespace, client: httpx.Client, bare: httpx.Client,
                model_id: str, request: tuple[bytes, list[int]], count: int,
                log: Log) -> dict[str, Any]:
    """Interleaved rounds of `count` sequential POSTs of `content`: our predict vs the bare one."""
    content, shape = request
    path = f"/v1/models/{model_id}/predict"
    for target in (client, bare):
        latencies(target, "POST", [path], 3, content)  # warm-up
    ours: list[dict[str, Any]] = []
    baseline: list[dict[str, Any]] = []
    for repetition in range(args.repetitions):
        pair = ((client, ours), (bare, baseline))
        for target, sink in (pair if repetition % 2 == 0 else pair[::-1]):
            started = time.perf_counter()
            timings = latencies(target, "POST", [path], count, content)
            sink.append({"latencies": timings["client"], "server": timings["server"],
                         "wall": time.perf_counter() - started})
        log(f"  [{repetition + 1}/{args.repetitions}] predict, {len(content)} B body: "
            f"{np.median(ours[-1]['latencies']) * 1e3:.2f} ms, "
            f"bare {np.median(baseline[-1]['latencies']) * 1e3:.2f} ms")
    return {"ours": ours, "bare": baseline, "body_bytes": len(content), "count": count,
            "shape": shape, "npy": content.startswith(b'{"inputs_npy"')}
