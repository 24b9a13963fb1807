"""Alembic environment: the models' metadata, batch mode for SQLite, our engine factory.

A caller (service.migrate) may hand over an open connection in `config.attributes["connection"]`;
otherwise the URL comes from `sqlalchemy.url` in the config or, failing that, from the
FEEDFORWARD_ settings, and the engine is built by service.db.make_engine so that SQLite gets
the same pragmas as the application.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from service.db import make_engine
from service.models import Base
from service.settings import get_settings

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url") or get_settings().resolved_database_url,
        target_metadata=target_metadata,
        render_as_batch=True,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    settings = get_settings()
    url = config.get_main_option("sqlalchemy.url")
    if url:
        settings = settings.model_copy(update={"database_url": url})
    engine = make_engine(settings)
    try:
        with engine.connect() as connection:
            _configure(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
