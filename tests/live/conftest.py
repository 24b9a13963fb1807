"""Fixtures for live tests: `live_server(workers=1, **settings)` → a started LiveServer.

Each server gets its own temporary data directory; every server is stopped at teardown (SIGTERM,
then SIGKILL). Settings are FEEDFORWARD_* values (lower-case names, as in service.settings).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live.live_helpers import FAST_LIFECYCLE, LiveServer


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """live_server(workers=1, **settings) → a started LiveServer; all stopped at teardown."""
    servers: list[LiveServer] = []

    def start(workers: int = 1, **settings: Any) -> LiveServer:
        data_dir = tmp_path / f"data{len(servers)}"
        server = LiveServer(data_dir, {"workers": workers, **FAST_LIFECYCLE, **settings})
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()
