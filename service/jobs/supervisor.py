"""The job supervisor (owned by S2). Placeholder with the interface create_app relies on."""

from __future__ import annotations

from service.db import Database
from service.settings import Settings


class JobSupervisor:
    """Claims queued jobs, runs them on an executor, commits their progress. Placeholder: does nothing."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database

    def start(self) -> None:
        """Start the background thread and the workers."""

    def stop(self) -> None:
        """Stop workers (running jobs stay `running` with their checkpoint and resume on restart)."""

    def wake(self) -> None:
        """A job was queued or a cancel was requested: look at the database now."""

    def is_healthy(self) -> bool:
        return True
