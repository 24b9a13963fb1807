"""Run and inspect Alembic migrations from the application (start-up, `feedforward migrate`,
/readyz).

The migration scripts are found through the `migrations` package, so this works from an installed
copy as well as from a checkout, whatever the working directory.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

import migrations

__all__ = ["alembic_config", "current_revision", "head_revision", "upgrade_to_head"]

MIGRATIONS_DIR = Path(
    next(iter(migrations.__path__))
).resolve()  # a package, or a stale editable namespace


def alembic_config() -> Config:
    """A Config for our scripts; callers pass a connection in `config.attributes["connection"]`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(engine: Engine) -> None:
    """Apply every pending migration, on a connection of the application's own engine (pragmas)."""
    config = alembic_config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()
