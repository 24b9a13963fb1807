"""Security and limits middleware (owned by S3). create_app calls install_middleware once."""

from __future__ import annotations

from fastapi import FastAPI

from service.settings import Settings


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """Placeholder until the security middleware lands: installs nothing."""
