"""Supervisor instance ids, "host:pid:token", and whether the process behind one is gone.

A job's `worker_id` is the id of the supervisor that leased it. When that supervisor was a process
on this host that no longer exists (or whose pid is now ours, as after a container restart), its
jobs can be settled at once instead of waiting for their lease to expire. Anything else — another
host, a live pid — must wait for the lease: only the lease proves that nobody runs the job.
"""

from __future__ import annotations

import os
import socket
import uuid

__all__ = ["instance_is_dead", "new_instance_id"]

_HOST_CHARS = 40  # Job.worker_id is 64 characters: host, pid and an 8-character token fit


def _host() -> str:
    return socket.gethostname()[:_HOST_CHARS]


def new_instance_id() -> str:
    return f"{_host()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def instance_is_dead(instance_id: str | None, *, me: str) -> bool:
    """True when the instance was a process on this host that is gone (or whose pid is now ours)."""
    host, _, rest = (instance_id or "").partition(":")
    pid_text = rest.partition(":")[0]
    if instance_id == me or host != _host() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
