"""Start uvicorn fast, many times: import the service once, then fork one server per request.

The durability loop restarts the API fifty times and Python imports are most of a start-up. This
process imports everything once; each line on stdin forks a child that builds the app from the
environment, opens the database (recovering it after the previous child was SIGKILLed) and serves
on PORT. The child's pid is written to stdout. Nothing opens a database or a thread before the
fork, and BLAS runs single-threaded (OPENBLAS_NUM_THREADS=1 in the environment).

    python fork_server.py PORT
"""

from __future__ import annotations

import os
import sys

import uvicorn

import service.app  # noqa: F401 - the heavy imports, done once before any fork


def serve(port: int) -> None:
    os.dup2(2, 1)  # stdout carries pids to the test; the server logs to stderr
    uvicorn.run("service.app:app", host="127.0.0.1", port=port, timeout_graceful_shutdown=5)
    os._exit(0)


def reap() -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def main() -> None:
    port = int(sys.argv[1])
    for _ in sys.stdin:
        reap()
        pid = os.fork()
        if pid == 0:
            serve(port)
        print(pid, flush=True)


if __name__ == "__main__":
    main()
