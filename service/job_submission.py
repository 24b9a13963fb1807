"""Submitting a training job: every check happens here, before a row exists.

A job that is accepted can train: its dataset(s) exist for this owner, the network is within the
configured limits, its shape and loss fit the data (engine.spec.check_against_data), and the owner
has room in the queue. Otherwise the client gets a 404/422/429 problem and no job row is created.
The seed is drawn here and stored, so every job is reproducible from its stored spec.
"""

from __future__ import annotations

import math
import secrets
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.errors import SpecError
from engine.network import EVALUATION_CHUNK_ROWS
from engine.spec import (
    MaxoutLayer,
    buffer_values_per_row,
    check_against_data,
    parameter_count,
    resolve_loss,
)
from service import crud
from service.db import Database
from service.idempotency import fingerprint, replayed_resource_id
from service.models import Dataset, Job
from service.problems import Conflict, NotFound, TooManyRequests, Unprocessable, field_error
from service.schemas import JobCreate, ValidationDataset, ValidationSplit
from service.settings import Settings

__all__ = [
    "JOBS_SCOPE",
    "RETRY_AFTER_SECONDS",
    "SEED_BOUND",
    "check_spec_limits",
    "create_checked_job",
    "submit_job",
]

JOBS_SCOPE = "POST /v1/jobs"
# Jobs take seconds to minutes; half a minute is a polite first retry for a full queue.
RETRY_AFTER_SECONDS = 30
SEED_BOUND = 2**63  # TrainingSpec.seed is a non-negative int64
Budget = tuple[list[Any], str, int, int, str]  # where, what, value, limit, setting


def submit_job(
    database: Database,
    settings: Settings,
    *,
    owner: str,
    body: JobCreate,
    idempotency_key: str | None,
) -> tuple[Job, str | None]:
    """Validate and queue the job, or find the one this Idempotency-Key created: (job, model id —
    a replayed job may have succeeded since)."""
    key, request_sha256 = idempotency_key, fingerprint(body.model_dump(mode="json"))
    try:
        with database.write() as session:
            replayed = replayed_resource_id(
                session, owner=owner, scope=JOBS_SCOPE, key=key, request_sha256=request_sha256,
                retention_hours=settings.idempotency_hours,
            )
            if replayed is not None:
                found = crud.get_job_with_model_id(session, owner=owner, job_id=replayed)
                assert found is not None  # the record and its job were committed together
                return found
            job = create_checked_job(session, settings, owner=owner, body=body)
            if key is not None:
                crud.save_idempotency_record(
                    session, owner=owner, scope=JOBS_SCOPE, key=key,
                    request_sha256=request_sha256, resource_id=job.id, status_code=202,
                )  # fmt: skip
            return job, None
    except IntegrityError as exc:  # a concurrent duplicate on databases without a global write lock
        raise Conflict("a request with this Idempotency-Key is in progress; retry it") from exc


def create_checked_job(session: Session, settings: Settings, *, owner: str, body: JobCreate) -> Job:
    """Run every submission check and add the queued job to `session`; the one way jobs are made.

    Checks, in order: the dataset (and validation dataset) exist for `owner` (404), the spec is
    within the configured limits and fits the data (422), the owner's queue has room (429). The
    stored spec has its defaults filled in, its loss resolved and a seed drawn when absent.
    Nothing is committed here: `submit_job` and `sweep_store.create_sweep` call it inside their
    write transaction, so a failed check (an ApiError) leaves no row behind.
    """
    dataset = _owned_dataset(session, owner, body.dataset_id, loc=["body", "dataset_id"])
    validation_dataset = None
    if isinstance(body.validation, ValidationDataset):
        validation_dataset = _owned_dataset(
            session, owner, body.validation.dataset_id, loc=["body", "validation", "dataset_id"]
        )
    check_spec_limits(body, n_features=dataset.n_features, n_samples=dataset.n_samples,
                      settings=settings)
    _check_fits_data(body, dataset, validation_dataset)
    _admit(session, settings, owner=owner)
    return crud.create_job(
        session,
        owner=owner,
        spec=_normalised_spec(body, dataset),
        dataset_id=dataset.id,
        validation_dataset_id=validation_dataset.id if validation_dataset else None,
        epochs=body.epochs,
    )


def _owned_dataset(session: Session, owner: str, dataset_id: str, *, loc: list[str]) -> Dataset:
    # FOR UPDATE keeps a concurrent DELETE from removing it before the job commits (PostgreSQL);
    # SQLite's BEGIN IMMEDIATE already serialises the two.
    dataset = crud.get_dataset(session, owner=owner, dataset_id=dataset_id, for_update=True)
    if dataset is None:
        raise NotFound(
            f"dataset {dataset_id!r} does not exist", errors=[field_error(loc, "no such dataset")]
        )
    return dataset


def _budgets(body: JobCreate, n_features: int, n_samples: int, settings: Settings) -> list[Budget]:
    layers = body.network.layers
    # A worker holds buffers for a training batch and for an evaluation chunk at once.
    rows = min(body.batch_size, n_samples) + min(EVALUATION_CHUNK_ROWS, n_samples)
    batch_bytes = rows * buffer_values_per_row(body.network) * np.dtype(body.dtype).itemsize
    budgets: list[Budget] = [
        (["network", "layers"], "the number of layers", len(layers), settings.max_layers,
         "FEEDFORWARD_MAX_LAYERS"),
        (["network"], f"the parameter count on {n_features} inputs",
         parameter_count(body.network, n_features), settings.max_parameters,
         "FEEDFORWARD_MAX_PARAMETERS"),
        (["epochs"], "epochs", body.epochs, settings.max_epochs, "FEEDFORWARD_MAX_EPOCHS"),
        (["batch_size"], "batch_size", body.batch_size, settings.max_batch_size,
         "FEEDFORWARD_MAX_BATCH_SIZE"),
        (["batch_size"], f"the bytes of one batch's buffers ({rows} rows)", batch_bytes,
         settings.max_batch_bytes, "FEEDFORWARD_MAX_BATCH_BYTES"),
    ]  # fmt: skip
    for index, layer in enumerate(layers):  # a maxout unit is K pieces wide
        pieces = layer.pieces if isinstance(layer, MaxoutLayer) else 1
        what = f"the width of layer {index + 1}" + (f" ({layer.units} units × {pieces} pieces)"
                                                    if pieces > 1 else "")
        budgets.append((["network", "layers", index, "units"], what, layer.units * pieces,
                        settings.max_width, "FEEDFORWARD_MAX_WIDTH"))
    return budgets


def check_spec_limits(
    body: JobCreate, *, n_features: int, n_samples: int, settings: Settings
) -> None:
    """422 naming the count and the limit for every budget the spec exceeds (L6, L7)."""
    errors = [
        field_error(["body", *loc], f"{what} is {value}; the limit is {limit} ({setting})")
        for loc, what, value, limit, setting in _budgets(body, n_features, n_samples, settings)
        if value > limit
    ]
    if errors:
        raise Unprocessable(errors[0]["msg"], errors=errors)


def _check_fits_data(body: JobCreate, dataset: Dataset, validation: Dataset | None) -> None:
    try:
        check_against_data(
            body,
            n_features=dataset.n_features,
            task=dataset.task,  # type: ignore[arg-type]
            n_classes=len(dataset.classes or []),
            n_targets=dataset.n_targets,
        )
    except SpecError as exc:
        raise Unprocessable(str(exc), errors=[field_error(["body", "network"], str(exc))]) from exc
    if body.early_stopping is not None and body.validation is None:
        raise Unprocessable(
            'early_stopping needs a validation set; add "validation": {"split": 0.2}',
            errors=[field_error(["body", "early_stopping"], "needs validation")],
        )
    if validation is not None:
        _check_validation_dataset(dataset, validation)
    if isinstance(body.validation, ValidationSplit):
        _check_split(body.validation.split, dataset.n_samples)


def _check_validation_dataset(train: Dataset, validation: Dataset) -> None:
    loc = ["body", "validation", "dataset_id"]
    problem = None
    if validation.task != train.task:
        problem = f"it is a {validation.task} dataset but the training data is {train.task}"
    elif validation.n_features != train.n_features:
        problem = (
            f"it has {validation.n_features} features but the training data has {train.n_features}"
        )
    elif train.task == "regression" and validation.n_targets != train.n_targets:
        problem = (
            f"it has {validation.n_targets} targets but the training data has {train.n_targets}"
        )
    elif train.task == "classification" and validation.classes != train.classes:
        # Class ids index each dataset's own sorted labels, so only equal label sets agree.
        problem = (
            f"its classes {(validation.classes or [])[:10]} differ from the training "
            f"data's {(train.classes or [])[:10]}"
        )
    if problem is not None:
        raise Unprocessable(
            f"the validation dataset does not match: {problem}", errors=[field_error(loc, problem)]
        )


def _check_split(split: float, n_samples: int) -> None:
    n_validation = math.ceil(split * n_samples)  # as engine.batching.split_rows counts them
    if n_samples - n_validation < 1:
        raise Unprocessable(
            f"a validation split of {split} leaves no training rows out of {n_samples}; "
            "use a smaller split or more data",
            errors=[field_error(["body", "validation", "split"], "leaves no training rows")],
        )


def _admit(session: Session, settings: Settings, *, owner: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        # Count-then-insert under READ COMMITTED lets two submissions both see room; one lock per
        # owner for the rest of this transaction serialises them (SQLite's writer lock does too).
        session.execute(select(func.pg_advisory_xact_lock(func.hashtext(owner))))
    queued = crud.count_queued_jobs(session, owner=owner)
    if queued >= settings.max_queued_jobs_per_owner:
        raise TooManyRequests(
            f"{queued} jobs are already queued for you (limit "
            f"{settings.max_queued_jobs_per_owner}); wait for some to start, or cancel some",
            retry_after_seconds=RETRY_AFTER_SECONDS,
        )


def _normalised_spec(body: JobCreate, dataset: Dataset) -> dict[str, Any]:
    """The body with defaults filled in, the loss resolved and a seed drawn when absent."""
    spec = body.model_dump(mode="json")
    spec["loss"] = resolve_loss(body, dataset.task)  # type: ignore[arg-type]
    if spec["seed"] is None:
        spec["seed"] = secrets.randbelow(SEED_BOUND)
    return spec
