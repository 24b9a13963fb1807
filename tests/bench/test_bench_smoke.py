"""Smoke runs of the benchmarks at minimal sizes, so the bench code cannot rot.

They run the real command lines (`python bench/engine.py …`, `python bench/service.py …`) into a
temporary results directory and check that the report holds every figure. No timing is asserted:
speed targets live in the benchmarks, never in tests. The PyTorch and scikit-learn comparisons run
only where those optional benchmark dependencies are installed.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 600
HAS_ORACLES = all(importlib.util.find_spec(name) for name in ("torch", "sklearn"))


def run_bench(script: str, out_dir: Path, *options: str) -> str:
    """Run a benchmark script as a user would and return the report it wrote."""
    command = [sys.executable, str(ROOT / "bench" / script), "--repetitions", "1",
               "--out-dir", str(out_dir), "--name", "smoke", *options]
    completed = subprocess.run(  # noqa: S603 - our own interpreter and script
        command, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    written = (out_dir / "smoke.md").read_text(encoding="utf-8")
    assert written.strip() == completed.stdout.strip()  # printed and written alike
    return written


# One BLAS thread: a 2-thread OpenMP pool spins badly on a busy CI machine, and speed is not tested.
ENGINE_SMALL = ("--samples", "1024", "--test-samples", "256", "--digits-epochs", "1",
                "--threads", "1")


@pytest.mark.slow
def test_engine_bench_reports_floor_ratios_digits_and_memory(tmp_path: Path) -> None:
    report = run_bench("engine.py", tmp_path, *ENGINE_SMALL, "--batches", "128", "32",
                       "--skip", "torch", "sklearn")
    for figure in ("epoch ÷ GEMM floor, batch 128", "epoch ÷ GEMM floor, batch 32",
                   "| ours@128 |", "| ours@32 |", "| numpy@128 |", "| numpy@32 |",
                   "samples/s ÷ hand-written NumPy, batch 32", "| ours-digits |", "memory-e3-std0",
                   "Regression comparison, 1 thread(s)", "bench/engine.py --repetitions 1"):
        assert figure in report
    assert "PyTorch" not in report.split("## How to read this")[0]
    assert "threads=1" in report  # the BLAS pools as threadpoolctl saw them in a child


@pytest.mark.slow
@pytest.mark.skipif(not HAS_ORACLES, reason="torch and scikit-learn are optional (bench extra)")
def test_engine_bench_compares_against_pytorch_and_sklearn(tmp_path: Path) -> None:
    report = run_bench("engine.py", tmp_path, *ENGINE_SMALL, "--batches", "32",
                       "--regression-threads", "0", "--skip", "memory")
    for figure in ("samples/s ÷ PyTorch, batch 32", "samples/s ÷ sklearn float32, batch 32",
                   "samples/s ÷ sklearn float64, batch 32",
                   "digits samples/s ÷ PyTorch", "| torch-digits |"):
        assert figure in report
    assert "Regression comparison" not in report


@pytest.mark.slow
@pytest.mark.live
def test_service_bench_reports_training_latency_and_predictions(tmp_path: Path) -> None:
    report = run_bench("service.py", tmp_path, "--workers", "1", "--samples", "512",
                       "--epochs", "1", "--get-requests", "20", "--predict-rows", "10",
                       "--large-requests", "2", "--small-requests", "10")
    for figure in ("service job (created_at → finished_at) ÷ engine alone",
                   "GET /v1/jobs/{id} p99 while every worker trains",
                   "small predictions: requests/s ÷ bare endpoint's", "| 1 workers training |",
                   "10 × 784 as inputs_npy",
                   "Every load job still running when the last GET returned: yes"):
        assert figure in report


def test_step_profile_clocks_every_kind_of_call() -> None:
    command = [sys.executable, str(ROOT / "bench" / "step_profile.py"), "--samples", "1024",
               "--batch", "64", "--epochs", "1"]
    completed = subprocess.run(  # noqa: S603 - our own interpreter and script
        command, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "µs per step; GEMM floor" in completed.stdout
    for kind in ("GEMM forward", "GEMM weight gradient", "GEMM input gradient", "gather",
                 "softmax cross-entropy", "SGD update", "activation forward", "bias add"):
        assert kind in completed.stdout
