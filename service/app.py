"""The FastAPI application: `create_app(settings)`, and `app` for `uvicorn service.app:app`.

Start-up (lifespan): apply Alembic migrations when the database is the embedded SQLite (other
databases are migrated by `feedforward migrate` before the servers start), then start the job
supervisor and its worker processes when FEEDFORWARD_WORKERS > 0. Shutdown stops them; running jobs
keep their checkpoint and resume on the next start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from threadpoolctl import threadpool_limits

from service.allocator import keep_freed_memory
from service.db import Database
from service.jobs.supervisor import JobSupervisor
from service.middleware import install_middleware
from service.migrate import head_revision, upgrade_to_head
from service.model_cache import ModelCache
from service.model_schemas import EvaluateRequest, GradientsRequest, PredictRequest
from service.observability import ObservabilityMiddleware, build_registry, configure_logging
from service.openapi import install_openapi
from service.problems import install_problem_handlers
from service.routes import datasets, events, jobs, models, operations, sweeps
from service.schemas import DatasetJsonBody, Problem
from service.settings import Settings, get_settings

__all__ = ["create_app", "create_app_from_env"]

DESCRIPTION = """\
Train feedforward neural networks over REST: upload a dataset, submit a network spec as a job,
follow it epoch by epoch, then predict, evaluate, download weights and read per-layer gradient
diagnostics with plain-language findings. Errors are RFC 9457 problem documents. With API keys
configured, use **Authorize** and paste a key.
"""
TAGS = [
    {
        "name": "datasets",
        "description": "Upload CSV, NPZ or JSON data; stored once per content hash.",
    },
    {"name": "jobs", "description": "Training jobs run by background workers."},
    {"name": "sweeps", "description": "Hyperparameter sweeps: one job per grid or list point."},
    {
        "name": "models",
        "description": "Trained models: predictions, evaluation, weights, diagnostics.",
    },
    {"name": "operations", "description": "Health, readiness and Prometheus metrics."},
]
HAND_PARSED_BODIES = (DatasetJsonBody, PredictRequest, EvaluateRequest, GradientsRequest, Problem)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    database: Database = app.state.database
    # Training runs in the workers; a small BLAS pool here leaves them the cores (a 1,000-row
    # prediction while workers trained took 58 ms with 1 thread against 103 ms with 2).
    blas = threadpool_limits(limits=settings.api_blas_threads, user_api="blas")
    keep_freed_memory()  # large request bodies reuse memory instead of faulting pages in again
    if database.is_sqlite:
        await run_in_threadpool(upgrade_to_head, database.engine)
    if settings.workers > 0:
        app.state.supervisor = JobSupervisor(settings, database)
        await run_in_threadpool(app.state.supervisor.start)
    try:
        yield
    finally:
        if app.state.supervisor is not None:
            await run_in_threadpool(app.state.supervisor.stop)
            app.state.supervisor = None
        database.dispose()
        blas.restore_original_limits()


def create_app(settings: Settings) -> FastAPI:
    """Build the application for these settings (nothing starts until the lifespan runs)."""
    configure_logging(settings.log_level)
    app = FastAPI(
        title="feedforward",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        redirect_slashes=False,  # one URL per resource: "/v1/models/" is a 404, not a redirect
    )
    database = Database(settings)
    registry, requests, latency = build_registry(database)
    app.state.settings, app.state.database, app.state.registry = settings, database, registry
    app.state.supervisor = None
    app.state.model_cache = ModelCache()
    app.state.head_revision = head_revision()
    install_problem_handlers(app)
    # Predictions are the hot path: their router is matched first (the paths do not overlap).
    for module in (models, datasets, jobs, events, sweeps, operations):
        app.include_router(module.router)
    install_middleware(app, settings)
    app.add_middleware(ObservabilityMiddleware, requests=requests, latency=latency)  # outermost
    install_openapi(app, HAND_PARSED_BODIES)
    return app


def create_app_from_env() -> FastAPI:
    """The factory uvicorn calls (`feedforward serve`): settings from FEEDFORWARD_ variables."""
    return create_app(get_settings())


_app: FastAPI | None = None


def __getattr__(name: str) -> Any:
    """`service.app.app`, built on first access: importing this module reads no environment."""
    global _app
    if name == "app":
        if _app is None:
            _app = create_app_from_env()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
