"""The README walkthrough in Python: upload the UCI digits, train, poll, predict, diagnose.

Usage: python examples/walkthrough.py [BASE_URL] (default http://127.0.0.1:8000). Set
FEEDFORWARD_API_KEY when the server has API keys configured.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import httpx

DIGITS = Path(__file__).with_name("digits.csv")
JOB = {
    "validation": {"split": 0.2},
    "network": {"layers": [{"type": "dense", "units": 64, "activation": "tanh"},
                           {"type": "dense", "units": 10, "activation": "softmax"}]},
    "optimizer": {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9},
    "batch_size": 32, "epochs": 60, "early_stopping": {"patience": 5}, "seed": 0,
}


def wait_for_job(client: httpx.Client, job_id: str, timeout: float = 300.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").raise_for_status().json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.2)  # polling interval of a client, not synchronisation
    raise TimeoutError(f"job {job_id} did not finish within {timeout} s")


def main(base_url: str) -> dict:
    key = os.environ.get("FEEDFORWARD_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60.0) as client:
        with DIGITS.open("rb") as file:
            upload = {"file": ("digits.csv", file, "text/csv")}
            dataset = client.post("/v1/datasets", files=upload, data={"name": "digits"})
        dataset = dataset.raise_for_status().json()
        print(f"dataset {dataset['id']}: {dataset['n_samples']} × {dataset['n_features']}")
        body = {"dataset_id": dataset["id"], **JOB}
        queued = client.post("/v1/jobs", json=body).raise_for_status().json()
        job = wait_for_job(client, queued["id"])
        print(f"job {job['id']}: {job['status']} at epoch {job['epoch']} ({job['stop_reason']})")
        model_id = job["model_id"]
        lines = DIGITS.read_text().splitlines()[1:6]
        rows = [[float(value) for value in line.split(",")[:-1]] for line in lines]
        predicted = client.post(f"/v1/models/{model_id}/predict",
                                json={"inputs": rows}).raise_for_status().json()
        print("predictions:", predicted["predictions"])
        diagnostics = client.get(f"/v1/models/{model_id}/diagnostics").raise_for_status().json()
        for finding in diagnostics["findings"]:
            print(f"{finding['code']}: {finding['message']}")
        return {"dataset": dataset, "job": job, "predictions": predicted["predictions"]}


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000")
