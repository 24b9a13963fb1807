"""The API process keeps a small BLAS pool while it runs and gives the original back on shutdown."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = """
import asyncio, json, sys
from pathlib import Path
from threadpoolctl import threadpool_info, threadpool_limits
from service.app import create_app
from service.settings import Settings

def blas_threads():
    return sorted({p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"})

async def main():
    app = create_app(Settings(data_dir=Path(sys.argv[1]), workers=0, api_blas_threads=1))
    with threadpool_limits(limits=2, user_api="blas"):  # as on an unpinned 2-core machine
        async with app.router.lifespan_context(app):
            inside = blas_threads()
        return {"inside": inside, "after": blas_threads()}

print(json.dumps(asyncio.run(main())))
"""


def test_api_process_pins_its_blas_pool_while_running(tmp_path: Path) -> None:
    # A fresh interpreter, as `feedforward serve` is: earlier tests in this process may have
    # loaded other thread pools.
    probe = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path)], capture_output=True,
                           text=True, check=True, timeout=120)
    seen = json.loads(probe.stdout.strip().splitlines()[-1])
    assert seen == {"inside": [1], "after": [2]}
