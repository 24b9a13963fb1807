"""Smoke run of bench/sweep.py at minimal size (one repetition, one epoch): the script works end to
end — the sequential child, both services with a Dask cluster, the overhead probe — and its report
holds every figure. No timing is asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.dask
def test_sweep_bench_reports_sequential_local_dask_and_overheads(tmp_path: Path) -> None:
    command = [
        sys.executable,
        str(ROOT / "bench" / "sweep.py"),
        "--repetitions",
        "1",
        "--epochs",
        "1",
        "--overhead-samples",
        "1",
        "--out-dir",
        str(tmp_path),
        "--name",
        "smoke",
    ]
    completed = subprocess.run(  # noqa: S603 - our own interpreter and script
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = (tmp_path / "smoke.md").read_text(encoding="utf-8")
    assert report.strip() == completed.stdout.strip()
    for figure in (
        "| sequential, one process |",
        "| local backend, 2 workers |",
        "| dask backend, 2 workers |",
        "| local |",
        "| dask |",
    ):
        assert figure in report
