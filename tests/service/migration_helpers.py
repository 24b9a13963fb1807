"""Alembic commands on a test database, shared by the SQLite and PostgreSQL migration tests."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from service.db import Database
from service.migrate import alembic_config
from service.models import Base

EXPECTED_TABLES = set(Base.metadata.tables) | {"alembic_version"}
COMMANDS = {"upgrade": command.upgrade, "downgrade": command.downgrade, "check": command.check}


def run(database: Database, action: str, *args: str) -> None:
    """Run `alembic <action> <args>` on the database's own connection, then commit."""
    config = alembic_config()
    with database.engine.connect() as connection:
        config.attributes["connection"] = connection
        COMMANDS[action](config, *args)
        connection.commit()


def tables(database: Database) -> set[str]:
    return set(inspect(database.engine).get_table_names())
