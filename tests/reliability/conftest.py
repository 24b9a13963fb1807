"""Fixtures for the reliability proofs: the real app in-process, authenticated as "alice".

`service_client` is module-scoped (hypothesis reuses it across examples); tests that need a clean
database take `fresh_client`. The Host is `localhost`, which the Host allowlist accepts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from tests.reliability.reliability_helpers import InProcessClient, make_app


@pytest.fixture(scope="module")
def service_app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return make_app(tmp_path_factory.mktemp("service") / "data")


@pytest.fixture(scope="module")
def service_client(service_app: FastAPI) -> Iterator[InProcessClient]:
    with InProcessClient(service_app) as client:
        yield client


@pytest.fixture
def fresh_client(tmp_path: Path) -> Iterator[InProcessClient]:
    with InProcessClient(make_app(tmp_path / "data")) as client:
        yield client
