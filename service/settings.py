"""All settings in one place: environment variables prefixed FEEDFORWARD_, read by get_settings().

Nothing reads the environment at import time; tests build Settings(...) objects and pass them to
create_app(settings).
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]

MiB = 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FEEDFORWARD_", extra="ignore")

    # --- where things live -----------------------------------------------------------------
    data_dir: Path = Field(Path("data"), description="Directory of the SQLite file.")
    database_url: str | None = Field(
        None, description="Any SQLAlchemy URL; default sqlite:///<data_dir>/feedforward.db."
    )
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "FULL"
    sqlite_busy_timeout_ms: int = Field(10_000, ge=5_000)

    # --- serving ---------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    api_keys: str = Field(
        "", description='"owner1:key1,owner2:key2"; required on every route but health when set.'
    )
    allowed_hosts: str = Field(
        "", description="Extra Host header values accepted, comma-separated (localhost always)."
    )
    cors_origins: str = Field("", description="Comma-separated CORS origins; none by default.")
    log_level: str = "INFO"

    # --- workers -----------------------------------------------------------------------------
    executor: Literal["local", "dask"] = "local"
    dask_scheduler: str | None = Field(None, description="tcp://host:8786 when executor=dask.")
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=0, le=256)
    blas_threads: int | None = Field(
        None, ge=1, description="BLAS threads per worker; default cores ÷ workers (at least 1)."
    )
    api_blas_threads: int = Field(1, ge=1, description="BLAS threads of the API process.")
    heartbeat_seconds: float = Field(5.0, gt=0)
    lease_seconds: float = Field(30.0, gt=0)
    max_attempts: int = Field(3, ge=1)
    job_wall_time_seconds: float = Field(15 * 60, gt=0)
    worker_memory_bytes: int | None = Field(None, ge=64 * MiB, description="RLIMIT_AS per worker.")
    poll_seconds: float = Field(0.2, gt=0, description="How often to look for queued jobs.")

    # --- limits --------------------------------------------------------------------------------
    max_upload_bytes: int = Field(512 * MiB, ge=1)
    max_json_bytes: int = Field(64 * MiB, ge=1)
    max_multipart_parts: int = Field(16, ge=1)
    max_rows: int = Field(1_000_000, ge=1)
    max_columns: int = Field(10_000, ge=1)
    max_field_bytes: int = Field(1 * MiB, ge=1)
    max_npz_members: int = Field(8, ge=1)
    max_array_elements: int = Field(200_000_000, ge=1)
    max_parameters: int = Field(10_000_000, ge=1)
    max_layers: int = Field(64, ge=1)
    max_width: int = Field(8192, ge=1)
    max_epochs: int = Field(10_000, ge=1)
    max_batch_size: int = Field(65_536, ge=1)
    max_batch_bytes: int = Field(
        1024 * MiB, ge=1,
        description="Per-batch buffers of a job (a training batch and an evaluation chunk).")
    max_predict_rows: int = Field(10_000, ge=1)
    max_queued_jobs_per_owner: int = Field(100, ge=1)
    idempotency_hours: float = Field(
        24.0, gt=0, description="How long an Idempotency-Key replays its first result.")

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'feedforward.db').resolve()}"

    @cached_property
    def api_key_owners(self) -> dict[str, str]:
        """Map of key → owner parsed from api_keys; empty when authentication is off."""
        owners: dict[str, str] = {}
        for pair in filter(None, (p.strip() for p in self.api_keys.split(","))):
            owner, sep, key = pair.partition(":")
            if not sep or not owner or not key:
                raise ValueError('FEEDFORWARD_API_KEYS must look like "owner1:key1,owner2:key2"')
            owners[key] = owner
        return owners

    @property
    def worker_blas_threads(self) -> int:
        if self.blas_threads is not None:
            return self.blas_threads
        return max(1, (os.cpu_count() or 1) // max(1, self.workers))


def get_settings() -> Settings:
    """Read the environment once; called by the app entry points, never at import time."""
    return Settings()
