"""Database engines and sessions.

SQLite is configured deliberately on every connection (WAL, foreign keys, busy timeout,
synchronous), and every transaction that may write starts with BEGIN IMMEDIATE, so a writer waits
for the lock up to busy_timeout instead of failing with "database is locked" when a deferred read
transaction tries to upgrade (https://www.sqlite.org/wal.html). Read-only sessions use a deferred
BEGIN so readers never queue behind writers. Engines are created in the process that uses them,
never inherited across fork.
Any other SQLAlchemy URL (PostgreSQL) works unchanged; only the pragmas are SQLite-specific.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings

__all__ = ["Database", "make_engine"]


def _configure_sqlite(engine: Engine, settings: Settings) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook emit BEGIN itself (pysqlite's implicit BEGIN is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(settings.sqlite_busy_timeout_ms)}")
        cursor.execute(f"PRAGMA synchronous={settings.sqlite_synchronous}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")


def make_engine(settings: Settings) -> Engine:
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={
                "check_same_thread": False,
                "timeout": settings.sqlite_busy_timeout_ms / 1000,
            },
        )
        _configure_sqlite(engine, settings)
        return engine
    return create_engine(url, pool_pre_ping=True)


class Database:
    """An engine plus session factories for writes (BEGIN IMMEDIATE) and reads (deferred)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._writer = sessionmaker(self.engine, expire_on_commit=False)
        reader_bind = self.engine.execution_options(sqlite_begin="DEFERRED")
        self._reader = sessionmaker(reader_bind, expire_on_commit=False)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on error."""
        with self._writer() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._reader() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
