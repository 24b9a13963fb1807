"""Idempotency-Key for POST /v1/jobs and POST /v1/datasets (Stripe's semantics, IETF draft).

The same owner + key + request body returns the resource created the first time, with the same
status code; the same key with a different body is a 422; keys are optional. The record is
written in the transaction that creates the resource, so a client that retries after a lost
response never makes a second resource; concurrent duplicates are serialised by the write lock
(BEGIN IMMEDIATE on SQLite; elsewhere by the unique constraint, surfacing as 409).

Keys are kept FEEDFORWARD_IDEMPOTENCY_HOURS (24, as Stripe does); after that the same key is a
new key. An owner's expired keys are deleted whenever that owner sends a key: the table stays
bounded.

A key whose dataset was deleted since is a 409 (dataset_upload): a 201 naming a dataset that
answers 404 would be false, and a second dataset under the key would break "one key, at most one
resource". Jobs are never deleted, so their keys always replay.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Header
from sqlalchemy.orm import Session

from service import crud
from service.models import utcnow
from service.problems import Unprocessable, field_error

__all__ = ["IdempotencyKeyHeader", "fingerprint", "replayed_resource_id"]

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description=(
            "Retry-safe submission: the same key and body return the first result; the same key "
            "with another body is a 422, and a key whose dataset was deleted since is a 409."
        ),
    ),
]


def fingerprint(payload: Any) -> str:
    """SHA-256 of the canonical JSON of the request (sorted keys), to compare retries with."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def replayed_resource_id(
    session: Session, *, owner: str, scope: str, key: str | None, request_sha256: str,
    retention_hours: float,
) -> str | None:
    """The id created earlier with this key and body; None for a new key; 422 for another body."""
    if key is None:
        return None
    crud.forget_idempotency_records(
        session, owner=owner, before=utcnow() - timedelta(hours=retention_hours))
    record = crud.find_idempotency_record(session, owner=owner, scope=scope, key=key)
    if record is None:
        return None
    if record.request_sha256 != request_sha256:
        raise Unprocessable(
            "this Idempotency-Key was used with a different request body; use a new key",
            errors=[field_error(["header", "Idempotency-Key"], "key reused with another body")],
        )
    return record.resource_id
