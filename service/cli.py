"""The `feedforward` command: `serve` (uvicorn on the app factory) and `migrate` (Alembic to head).

    feedforward serve [--host 127.0.0.1] [--port 8000]
    feedforward migrate

Settings come from FEEDFORWARD_ environment variables; --host and --port override
FEEDFORWARD_HOST and FEEDFORWARD_PORT. `serve` refuses a non-loopback host without API keys
before anything binds. Imports stay light until a command runs, so a refusal is immediate.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from service.settings import Settings, get_settings

__all__ = ["main"]

GRACEFUL_SHUTDOWN_SECONDS = 10  # time for open streams to end before uvicorn closes them


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="feedforward", description="A training service for feedforward neural networks."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the API server and its training workers")
    serve.add_argument("--host", help="address to listen on (default FEEDFORWARD_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default FEEDFORWARD_PORT, 8000)")
    commands.add_parser("migrate", help="apply database migrations up to the latest revision")
    return parser


def serve(settings: Settings) -> None:
    import uvicorn

    from service.observability import uvicorn_log_config
    from service.security_checks import check_bind

    check_bind(settings)
    # The factory reads the environment again: hand it the host and port actually served.
    os.environ["FEEDFORWARD_HOST"] = settings.host
    os.environ["FEEDFORWARD_PORT"] = str(settings.port)
    uvicorn.run(
        "service.app:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_config=uvicorn_log_config(settings.log_level),
        access_log=False,  # the app logs each request as JSON, with its request id
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


def migrate(settings: Settings) -> None:
    from service.db import Database
    from service.migrate import current_revision, upgrade_to_head

    database = Database(settings)
    try:
        upgrade_to_head(database.engine)
        print(f"database at revision {current_revision(database.engine)}")
    finally:
        database.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = get_settings()
    if args.command == "migrate":
        migrate(settings)
        return 0
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    serve(settings.model_copy(update=overrides))
    return 0


if __name__ == "__main__":
    sys.exit(main())
