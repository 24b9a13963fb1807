"""A1 against a live uvicorn: `st run` with the bearer token, every check, the stateful phase
(OpenAPI links from create to read/cancel/delete) and the strict-JSON hook. Exit 0 only.

Schemathesis exits 1 when a check failed and 2 when it could not run; both fail this test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from reliability_helpers import KEYS, live_server

HERE = Path(__file__).resolve().parent
ST = Path(sys.executable).with_name("st")


@pytest.mark.live
@pytest.mark.slow
@pytest.mark.timeout(400)
def test_schemathesis_cli_finds_no_failure_against_live_uvicorn(tmp_path):
    with live_server(tmp_path / "data", max_queued_jobs_per_owner="100000") as server:
        command = [
            str(ST), "--no-color", "--config-file", str(HERE / "schemathesis.toml"),
            "run", f"{server.base_url}/openapi.json",
            "-H", f"Authorization: Bearer {KEYS['alice']}",
            "--checks", "all", "--max-examples", "15", "--max-time", "60",
            "--request-timeout", "10", "--workers", "1", "--seed", "42",
            "--report", "junit", "--report-dir", str(tmp_path / "reports"),
        ]  # fmt: skip
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks", "PYTHONPATH": str(HERE)}
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Stateful" in result.stdout and "Scenarios:" in result.stdout, result.stdout[-3000:]
