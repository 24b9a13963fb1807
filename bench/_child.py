"""Entry point of a measurement subprocess: `python -m bench._child TASK 'JSON-PARAMS'`.

Tasks are looked up in a fixed table (no dynamic import). The result, plus the BLAS pools that
threadpoolctl sees in this process and its peak RSS, is printed as one `BENCH_RESULT {json}` line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from threadpoolctl import threadpool_info

from bench import _digits_tasks, _engine_tasks, _memory_tasks, _service_tasks
from bench._harness import RESULT_MARKER
from bench._memory_tasks import peak_rss_bytes

TASKS: dict[str, Callable[..., dict[str, Any]]] = {
    "ours_epoch": _engine_tasks.ours_epoch,
    "numpy_epoch": _engine_tasks.numpy_epoch,
    "torch_epoch": _engine_tasks.torch_epoch,
    "sklearn_epoch": _engine_tasks.sklearn_epoch,
    "ours_digits": _digits_tasks.ours_digits,
    "torch_digits": _digits_tasks.torch_digits,
    "ours_memory": _memory_tasks.ours_memory,
    "engine_job": _service_tasks.engine_job,
}


def main(argv: list[str]) -> int:
    name, params = argv[1], json.loads(argv[2])
    result = TASKS[name](**params)
    result["threadpool"] = threadpool_info()
    result["peak_rss_mb"] = result.get("peak_rss_mb", peak_rss_bytes() / 2**20)
    print(RESULT_MARKER + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
