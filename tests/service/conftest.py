"""Shared fixtures for service tests: settings in a tmp dir, the app, an in-process httpx client.

A test module changes the configuration by overriding the `settings` fixture, e.g.

    @pytest.fixture
    def settings(tmp_path):
        return make_settings(tmp_path, api_keys="alice:key-a,bob:key-b")

Async tests use anyio (`pytestmark = pytest.mark.anyio`), on asyncio.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from service.app import create_app
from service.settings import Settings
from tests.service.api_helpers import client, make_settings, running_app


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(name="make_settings")
def make_settings_fixture() -> Callable[..., Settings]:
    """make_settings(tmp_path, **overrides) as a fixture, for modules that prefer injection."""
    return make_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the running app (lifespan entered: migrated, supervisor started)."""
    async with running_app(app), client(app) as http:
        yield http


@pytest.fixture
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    """The app with its lifespan entered, for tests that make several clients (tenants)."""
    async with running_app(app):
        yield app
