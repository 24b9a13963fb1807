"""The API process keeps freed memory for the next request instead of returning it to the kernel."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import os, sys
from service.allocator import keep_freed_memory
if sys.argv[1] == "tuned":
    assert keep_freed_memory()
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
before = rss()
block = b"\\x01" * (20 * 1024 * 1024)  # written, so its pages are resident
del block
print(rss() - before)
"""


def _retained_after_free(mode: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60, check=True
    )
    return int(result.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; glibc mallopt")
def test_a_freed_20_mb_block_stays_with_the_process_only_when_tuned() -> None:
    assert _retained_after_free("default") < 5 * 1024 * 1024  # mmap'ed, returned at once
    assert _retained_after_free("tuned") > 15 * 1024 * 1024  # kept on the heap for reuse
