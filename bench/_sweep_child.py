"""Child of bench/sweep.py: the sweep's jobs one after another in one process (the baseline).

Run as `python -m bench._sweep_child JSON` with BLAS threads pinned in the environment; prints one
`BENCH_RESULT {json}` line. Each job is `service.jobs.task.run_job`, exactly what a worker runs.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from bench._harness import RESULT_MARKER
from bench.sweep_spec import digits_arrays, sweep_payloads
from service.jobs.task import run_job


def run_sequentially(params: dict[str, Any]) -> dict[str, Any]:
    arrays = digits_arrays()
    payloads = sweep_payloads(epochs=params["epochs"])
    run_job(payloads[0], arrays, lambda report: None, lambda: False)  # warm-up, not timed
    started = time.perf_counter()
    accuracies = []
    for payload in payloads:
        result = run_job(payload, arrays, lambda report: None, lambda: False)
        accuracies.append(result["metrics"]["val_accuracy"])
    return {"seconds": time.perf_counter() - started, "best_val_accuracy": max(accuracies)}


if __name__ == "__main__":
    print(RESULT_MARKER + json.dumps(run_sequentially(json.loads(sys.argv[1]))), flush=True)
