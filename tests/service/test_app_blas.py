"""The API process keeps a small BLAS pool while it runs and gives the original back on shutdown."""

from __future__ import annotations

from pathlib import Path

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from service.app import create_app
from tests.service.api_helpers import make_settings, running_app

pytestmark = pytest.mark.anyio


def blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


async def test_api_process_pins_its_blas_pool_while_running(tmp_path: Path) -> None:
    with threadpool_limits(limits=2, user_api="blas"):  # as on an unpinned 2-core machine
        app = create_app(make_settings(tmp_path, api_blas_threads=1))
        async with running_app(app):
            assert blas_threads() == {1}
        assert blas_threads() == {2}
