"""Service benchmark: `.venv/bin/python bench/service.py` (add --help for the options).

Against a real uvicorn subprocess on loopback with its own SQLite file and worker processes:
training through the service vs the engine alone (784-256-128-10, 60,000 samples, batch 128, 3
epochs, diagnostics every epoch), GET /v1/jobs/{id} latency while every worker trains, and
predictions against a bare FastAPI endpoint that returns a constant, side by side.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the repository, not this folder
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import httpx  # noqa: E402

from bench import _service_phases as phases  # noqa: E402
from bench import _service_report as report  # noqa: E402
from bench._data import DIGITS_CSV, mnist_like  # noqa: E402
from bench._harness import ROOT, exit_on_sigterm, write_raw, write_results  # noqa: E402
from bench._servers import Server, service_environment  # noqa: E402
from bench._service_client import upload_arrays, upload_csv  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5, help="interleaved rounds (5–7)")
    parser.add_argument("--workers", type=int, default=2, help="FEEDFORWARD_WORKERS")
    parser.add_argument("--samples", type=int, default=60_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--get-requests", type=int, default=2000)
    parser.add_argument("--predict-rows", type=int, default=1000)
    parser.add_argument("--large-requests", type=int, default=20)
    parser.add_argument("--small-requests", type=int, default=500)
    parser.add_argument("--name", default="service", help="results file name (without .md)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    log = report.logger()
    with tempfile.TemporaryDirectory(prefix="ff-bench-") as scratch:
        env = service_environment(Path(scratch) / "data", args.workers)
        with Server("service.app:app", env, Path(scratch) / "service.log", "/readyz") as server, \
                httpx.Client(base_url=server.url, timeout=600.0) as client:
            log(f"service up at {server.url} with {args.workers} workers; uploading data")
            X, y = mnist_like(args.samples, seed=0)
            dataset_id = upload_arrays(client, X, y, "mnist-like")
            digits_id = upload_csv(client, DIGITS_CSV)
            del X, y
            results = phases.run_all(args, client, dataset_id, digits_id, Path(scratch), log)
    write_raw(args.out_dir, args.name, results)
    markdown = report.render(args, results)
    print(markdown)
    log(f"written to {write_results(args.out_dir, args.name, markdown)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
