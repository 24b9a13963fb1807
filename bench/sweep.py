"""Sweep benchmark (issue 5): 8 digits-sized jobs × 20 epochs, three ways, side by side.

    .venv/bin/python bench/sweep.py [--repetitions 3] [--epochs 20]  # → bench/results/sweep.md

- **sequential**: the 8 jobs one after another in one fresh process (`run_job`, 1 BLAS thread);
- **local**: `POST /v1/sweeps` on a uvicorn server with 2 local worker processes (1 BLAS thread
  each), timed from the POST until every job has succeeded;
- **dask**: the same on a server with `FEEDFORWARD_EXECUTOR=dask` and a 2-worker `LocalCluster`
  (one single-threaded worker process each; Dask's nanny pins BLAS to 1 thread).
Targets: local and dask each ≤ 0.6× sequential. Both servers and the cluster start before the
rounds (start-up is excluded); rounds rotate the order. Then the overhead Dask adds per job —
submission to the first epoch report, minus that epoch's own training time — is measured on an idle
executor (and the same for the local executor, for comparison).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

if __package__ in (None, ""):  # `python bench/sweep.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import (  # noqa: E402
    RESULT_MARKER,
    ROOT,
    child_environment,
    machine_description,
    markdown_table,
    median,
    spread,
    verdict,
)
from bench._servers import Server  # noqa: E402
from bench.sweep_overhead import measure_overheads  # noqa: E402
from bench.sweep_spec import GRID, base_body  # noqa: E402

TARGET_RATIO = 0.6
POLL_SECONDS = 0.02
SWEEP_TIMEOUT_SECONDS = 600.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_sequential(epochs: int) -> float:
    command = [sys.executable, "-m", "bench._sweep_child", json.dumps({"epochs": epochs})]
    completed = subprocess.run(  # noqa: S603 - fixed interpreter and module, JSON argument
        command,
        cwd=ROOT,
        env=child_environment(1),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    for line in completed.stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            return float(json.loads(line[len(RESULT_MARKER) :])["seconds"])
    raise RuntimeError(f"sequential baseline failed:\n{completed.stderr[-3000:]}")


def service_env(data_dir: Path, **settings: str) -> dict[str, str]:
    env = {
        "FEEDFORWARD_DATA_DIR": str(data_dir),
        "FEEDFORWARD_WORKERS": "2",
        "FEEDFORWARD_BLAS_THREADS": "1",
        "FEEDFORWARD_LOG_LEVEL": "WARNING",
    }
    return env | {f"FEEDFORWARD_{key.upper()}": value for key, value in settings.items()}


def upload_digits(http: httpx.Client) -> str:
    content = (ROOT / "examples" / "digits.csv").read_bytes()
    response = http.post("/v1/datasets", files={"file": ("digits.csv", content, "text/csv")})
    response.raise_for_status()
    return str(response.json()["id"])


def time_sweep(http: httpx.Client, dataset_id: str, epochs: int) -> float:
    """Seconds from POST /v1/sweeps until every point has succeeded."""
    body = {"base": base_body(dataset_id, epochs=epochs), "grid": GRID}
    started = time.perf_counter()
    response = http.post("/v1/sweeps", json=body)
    response.raise_for_status()
    sweep_id, total = response.json()["id"], len(response.json()["jobs"])
    deadline = started + SWEEP_TIMEOUT_SECONDS
    while time.perf_counter() < deadline:
        counts = http.get(f"/v1/sweeps/{sweep_id}").json()["status_counts"]
        if counts.get("succeeded", 0) == total:
            return time.perf_counter() - started
        if counts.get("failed") or counts.get("cancelled"):
            raise RuntimeError(f"sweep {sweep_id} did not succeed: {counts}")
        time.sleep(POLL_SECONDS)  # polling a server, not synchronising
    raise RuntimeError(f"sweep {sweep_id} not finished after {SWEEP_TIMEOUT_SECONDS} s")


def run_rounds(rounds: int, epochs: int, scheduler: str, tmp: Path) -> dict[str, list[float]]:
    local = Server("service.app:app", service_env(tmp / "local"), tmp / "local.log", "/readyz")
    dask = Server(
        "service.app:app",
        service_env(tmp / "dask", executor="dask", dask_scheduler=scheduler),
        tmp / "dask.log",
        "/readyz",
    )
    times: dict[str, list[float]] = {"sequential": [], "local": [], "dask": []}
    with (
        local,
        dask,
        httpx.Client(base_url=local.url, timeout=60) as to_local,
        httpx.Client(base_url=dask.url, timeout=60) as to_dask,
    ):
        clients = {"local": to_local, "dask": to_dask}
        datasets = {label: upload_digits(http) for label, http in clients.items()}
        for label, http in clients.items():  # warm-up: imports, first scatter, model caches
            time_sweep(http, datasets[label], 1)
        for repetition in range(rounds):
            order = list(times)[repetition % 3 :] + list(times)[: repetition % 3]
            for label in order:
                seconds = (
                    run_sequential(epochs)
                    if label == "sequential"
                    else time_sweep(clients[label], datasets[label], epochs)
                )
                times[label].append(seconds)
                log(f"  [{repetition + 1}/{rounds}] {label}: {seconds:.2f} s")
    return times


def report(
    times: dict[str, list[float]], overheads: dict[str, dict[str, Any]], args: argparse.Namespace
) -> str:
    rows = [["sequential, one process", spread(times["sequential"]), "1", "—"]]
    for label in ("local", "dask"):
        ratios = [a / b for a, b in zip(times[label], times["sequential"], strict=True)]
        median_ratio = median(ratios)
        rows.append(
            [
                f"{label} backend, 2 workers",
                spread(times[label]),
                spread(ratios),
                f"≤ {TARGET_RATIO}× — {verdict(median_ratio, TARGET_RATIO, at_least=False)}",
            ]
        )
    overhead_rows = [
        [label, spread(measured["warm"]), f"{measured['cold']:.3f}"]
        for label, measured in overheads.items()
    ]
    return "\n".join(
        [
            "# Sweep benchmark",
            "",
            f"`python bench/sweep.py --repetitions {args.repetitions} --epochs {args.epochs}`",
            "",
            *machine_description(),
            "",
            f"8 jobs (grid {GRID}), UCI digits 64-64-10 tanh/softmax, batch 32, "
            f"{args.epochs} epochs, validation split 0.2, diagnostics and checkpoint every epoch.",
            "",
            markdown_table(
                ["run", "seconds, median [min–max]", "÷ sequential (paired)", "target"], rows
            ),
            "",
            "Overhead per job, submission → first epoch report minus that epoch's training time "
            "(idle executor, 1-epoch jobs; cold = first job, which also sends the dataset):",
            "",
            markdown_table(
                ["executor", "warm seconds, median [min–max]", "cold seconds"], overhead_rows
            ),
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--overhead-samples", type=int, default=8)
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--name", default="sweep", help="report file name (without .md)")
    args = parser.parse_args(argv)
    from distributed import LocalCluster

    with (
        tempfile.TemporaryDirectory(prefix="feedforward-sweep-") as tmp,
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
    ):
        times = run_rounds(args.repetitions, args.epochs, cluster.scheduler_address, Path(tmp))
        overheads = measure_overheads(
            cluster.scheduler_address, Path(tmp), samples=args.overhead_samples
        )
    text = report(times, overheads, args)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / f"{args.name}.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
