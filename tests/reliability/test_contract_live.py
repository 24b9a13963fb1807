"""A1 against a live uvicorn: `st run` with the bearer token, every check, the stateful phase
(OpenAPI links from create to read/cancel/delete) and the strict-JSON hook. Exit 0 only.

Random request bodies rarely make a valid dataset, so a real dataset, a finished job and its model
are created first and their ids given to Schemathesis as parameter values: the read, predict,
weights, diagnostics and event-stream operations then reach their real logic. Schemathesis exits
1 when a check failed and 2 when it could not run; both fail this test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.reliability_helpers import (
    KEYS,
    ROOT,
    blobs_csv,
    live_server,
    small_job,
    wait_until,
)

HERE = Path(__file__).resolve().parent
ST = Path(sys.executable).with_name("st")


def seeded_config(api, directory: Path) -> Path:
    """schemathesis.toml plus the ids of a dataset, a succeeded job and its model."""
    upload = api.post("/v1/datasets", files={"file": ("b.csv", blobs_csv(), "text/csv")})
    dataset_id = upload.json()["id"]
    job_id = api.post("/v1/jobs", json=small_job(dataset_id)).json()["id"]

    def finished() -> bool:
        return api.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded"

    assert wait_until(finished, timeout=60, interval=0.1)
    model_id = api.get(f"/v1/jobs/{job_id}").json()["model_id"]
    ids = {"dataset_id": dataset_id, "job_id": job_id, "model_id": model_id}
    lines = [f'"path.{name}" = "{value}"' for name, value in ids.items()]
    config = directory / "schemathesis.toml"
    base = (HERE / "schemathesis.toml").read_text()
    config.write_text(base + "\n[parameters]\n" + "\n".join(lines) + "\n")
    return config


@pytest.mark.live
@pytest.mark.slow
@pytest.mark.timeout(400)
def test_schemathesis_cli_finds_no_failure_against_live_uvicorn(tmp_path):
    settings = {"workers": "1", "max_queued_jobs_per_owner": "100000"}
    with live_server(tmp_path / "data", **settings) as server, server.client() as api:
        config = seeded_config(api, tmp_path)
        command = [
            str(ST), "--no-color", "--config-file", str(config),
            "run", f"{server.base_url}/openapi.json",
            "-H", f"Authorization: Bearer {KEYS['alice']}",
            "--checks", "all", "--max-examples", "15", "--max-time", "60",
            "--request-timeout", "10", "--workers", "1", "--seed", "42",
            "--report", "junit", "--report-dir", str(tmp_path / "reports"),
        ]  # fmt: skip
        hooks = "tests.reliability.schemathesis_hooks"
        env = {**os.environ, "SCHEMATHESIS_HOOKS": hooks, "PYTHONPATH": str(ROOT)}
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Stateful" in result.stdout and "Scenarios:" in result.stdout, result.stdout[-3000:]
