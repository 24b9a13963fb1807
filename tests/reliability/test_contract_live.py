"""A1 against a live uvicorn: `st run` with the bearer token, every check, the stateful phase
(OpenAPI links from create to read/cancel/delete) and the strict-JSON hook. Exit 0 only.

Random request bodies rarely make a valid job, so a finished job and its model are created first
and their ids given to Schemathesis as parameter values: the job, predict, weights, diagnostics
and event-stream operations then reach their real logic. Schemathesis exits 1 when a check failed
and 2 when it could not run; both fail this test.

Only ids of resources that no request can destroy are pinned (a job is never deleted, cancelling
a succeeded one is a 409; models have no DELETE), and the test checks they survive. A configured
value replaces every other value, stateful links included, so a pinned dataset id made a flaky
"created resource not found" (ST302): the run deletes the dataset early (DELETE with the pinned id,
or with the id Schemathesis reads from GET /v1/datasets), and each later POST /v1/datasets → GET
/v1/datasets/{dataset_id} step then read the pinned, deleted id instead of the one just created.
The seeded dataset is still the job's, and GET /v1/datasets lists it for Schemathesis to reuse.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.polling import wait_until
from tests.reliability.reliability_helpers import (
    KEYS,
    ROOT,
    blobs_csv,
    live_server,
    make_app,
    small_job,
)

HERE = Path(__file__).resolve().parent
ST = Path(sys.executable).with_name("st")


class SeededIds(NamedTuple):
    job_id: str
    model_id: str


def seeded_config(api, directory: Path) -> tuple[Path, SeededIds]:
    """schemathesis.toml plus the ids of a succeeded job and its model."""
    upload = api.post("/v1/datasets", files={"file": ("b.csv", blobs_csv(), "text/csv")})
    dataset_id = upload.json()["id"]
    job_id = api.post("/v1/jobs", json=small_job(dataset_id)).json()["id"]

    def finished() -> bool:
        return api.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded"

    wait_until(finished, timeout=60, interval=0.1, message=f"seed job {job_id} succeeds")
    model_id = api.get(f"/v1/jobs/{job_id}").json()["model_id"]
    seeded = SeededIds(job_id, model_id)
    lines = [f'"path.{name}" = "{value}"' for name, value in seeded._asdict().items()]
    config = directory / "schemathesis.toml"
    base = (HERE / "schemathesis.toml").read_text()
    config.write_text(base + "\n[parameters]\n" + "\n".join(lines) + "\n")
    return config, seeded


def seeded_statuses(api, seeded: SeededIds) -> dict[str, int]:
    """GET status of each seeded resource: all 200 unless the run destroyed one."""
    paths = (f"/v1/jobs/{seeded.job_id}", f"/v1/models/{seeded.model_id}")
    return {path: api.get(path).status_code for path in paths}


@pytest.mark.live
@pytest.mark.slow
@pytest.mark.timeout(400)
def test_schemathesis_cli_finds_no_failure_against_live_uvicorn(tmp_path):
    settings = {"workers": "1", "max_queued_jobs_per_owner": "100000"}
    with live_server(tmp_path / "data", **settings) as server, server.client() as api:
        config, seeded = seeded_config(api, tmp_path)
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
        result = subprocess.run(
            command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
        )  # cwd: Schemathesis keeps a .schemathesis/ crash cache in its working directory
        survivors = seeded_statuses(api, seeded)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Stateful" in result.stdout and "Scenarios:" in result.stdout, result.stdout[-3000:]
    assert set(survivors.values()) == {200}, survivors


def test_only_ids_no_operation_can_delete_are_pinned(tmp_path):
    """A pinned id overrides stateful links too, so a deletable one turns into ST302 flakes."""
    schema = make_app(tmp_path / "data").openapi()
    deletable = {
        parameter["name"]
        for operations in schema["paths"].values()
        for parameter in operations.get("delete", {}).get("parameters", [])
        if parameter["in"] == "path"
    }
    assert deletable == {"dataset_id"}  # the check below means something
    assert not deletable & set(SeededIds._fields)
    assert "[parameters]" not in (HERE / "schemathesis.toml").read_text()
