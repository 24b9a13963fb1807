"""The PostgreSQL fixture itself: a real server on loopback, one fresh database per test."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.slow


def test_each_test_gets_an_empty_database_on_loopback(postgres_url: str) -> None:
    assert "@127.0.0.1:" in postgres_url
    engine = create_engine(postgres_url)
    with engine.connect() as connection:
        tables = connection.execute(
            text("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
        ).scalar_one()
        version = connection.execute(text("SHOW server_version_num")).scalar_one()
    engine.dispose()
    assert tables == 0
    assert int(version) >= 150000
