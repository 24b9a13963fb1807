"""Entry point of a local worker process: limits first, numpy second.

BLAS libraries read their thread count once, when numpy is first imported, so the environment is set
here, in the child, before anything imports numpy; the count is the same for every attempt of a job,
which keeps resumed runs bit-identical. This module imports only the standard library.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event

__all__ = ["BLAS_THREAD_VARIABLES", "limit_memory", "worker_main"]

# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are left alone on purpose: the machine sets them.
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
# Workers yield the CPU to the API process when both want it, so requests stay fast while every
# worker trains; on an otherwise idle machine training runs at full speed all the same.
WORKER_NICENESS = 10


def _pin_blas_threads(threads: int) -> None:
    for name in BLAS_THREAD_VARIABLES:
        os.environ[name] = str(threads)


def limit_memory(memory_bytes: int | None) -> None:
    """RLIMIT_AS: an allocation beyond it raises MemoryError instead of starving the machine."""
    if memory_bytes is not None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when the API process dies (e.g. kill -9 of the server)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def worker_main(
    conn: Connection, cancel: Event, blas_threads: int, memory_bytes: int | None, parent_pid: int
) -> None:
    """Run jobs sent over `conn` until told to stop or the parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is the parent's to handle
    _die_with_parent()
    if os.getppid() != parent_pid:
        return  # the parent died before prctl took effect
    numpy_was_loaded = "numpy" in sys.modules
    os.nice(WORKER_NICENESS)
    _pin_blas_threads(blas_threads)
    limit_memory(memory_bytes)
    # numpy and the engine are imported here, now that the environment is set
    from service.jobs.task import run_job
    from service.jobs.worker import serve

    serve(conn, cancel, parent_pid=parent_pid, blas_threads=blas_threads,
          numpy_was_loaded=numpy_was_loaded, run=run_job)
