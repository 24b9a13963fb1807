"""POST /v1/datasets: read a multipart upload or a JSON body, parse it off the event loop, store it.

Uploads arrive through Starlette's form parser, which spools files to disk (nothing is buffered
whole); service.dataset_parsing turns the file into checked arrays in a worker thread. Arrays are
stored once per SHA-256 of their canonical bytes (DatasetBlob); each upload gets its own Dataset
row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, TypeVar

import numpy as np
import pydantic_core
from fastapi.exceptions import RequestValidationError
from pydantic import Field, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from service import crud
from service.dataset_parsing import ParsedDataset, canonical_bytes, parse_json_dataset, parse_upload
from service.db import Database
from service.idempotency import fingerprint, replayed_resource_id
from service.models import Dataset
from service.multipart import bounded_form
from service.problems import Conflict, Unprocessable, UnsupportedMediaType, field_error
from service.request_guards import media_type
from service.schemas import ClosedBody, Task
from service.settings import Settings

__all__ = ["DATASETS_SCOPE", "DatasetUpload", "read_dataset_request", "store_dataset_upload"]

DATASETS_SCOPE = "POST /v1/datasets"
FORM_FIELDS = frozenset({"file", "name", "target", "task"})
DEFAULT_NAME = "dataset"
Fields = TypeVar("Fields", bound=ClosedBody)


@dataclass(frozen=True)
class DatasetUpload:
    name: str
    parsed: ParsedDataset


class _JsonEnvelope(ClosedBody):
    """The JSON body's fields other than the arrays, which dataset_parsing checks."""

    name: str | None = Field(None, max_length=256)
    task: Task | None = None
    feature_names: Any = None
    X: Any
    y: Any


class _FormFields(ClosedBody):
    name: str | None = Field(None, max_length=256)
    target: str | None = Field(None, max_length=256)
    task: Task | None = None


async def read_dataset_request(request: Request, settings: Settings) -> DatasetUpload:
    """Dispatch on the media type: application/json or multipart/form-data, else 415."""
    kind = media_type(request.headers.get("content-type"))
    if kind == "application/json":
        return await run_in_threadpool(_parse_json_body, await request.body(), settings)
    if kind == "multipart/form-data":
        return await _read_form(request, settings)
    raise UnsupportedMediaType(
        "send the dataset as multipart/form-data (a 'file' field) or as application/json"
    )


def _parse_json_body(body: bytes, settings: Settings) -> DatasetUpload:
    try:  # pydantic-core's parser: several times faster than json.loads on big arrays; no NaN
        obj = pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        raise Unprocessable(
            f"the body is not valid JSON: {exc}", errors=[field_error(["body"], "invalid JSON")]
        ) from None
    envelope = _validated(_JsonEnvelope, obj, loc=["body"])
    # The decoded object itself, not a model_dump (which would copy X and y): the envelope allows
    # no other keys, and read_json_dataset treats null and absent keys alike.
    arrays = {key: value for key, value in obj.items() if key != "name"}
    parsed = parse_json_dataset(arrays, task=envelope.task, limits=settings)
    return DatasetUpload(name=envelope.name or DEFAULT_NAME, parsed=parsed)


def _validated(model: type[Fields], obj: Any, *, loc: list[str]) -> Fields:
    """`obj` as `model`; else a 422 like FastAPI's (and model_access.parse_body's), under `loc`."""
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        errors = [{**error, "loc": (*loc, *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from None


async def _read_form(request: Request, settings: Settings) -> DatasetUpload:
    max_fields = settings.max_multipart_parts - 1  # the file part counts towards the limit too
    limits = {"max_fields": max_fields, "max_part_size": settings.max_field_bytes}
    async with bounded_form(request, max_files=1, **limits) as form:
        upload, fields = _form_parts(form)
        parsed = await run_in_threadpool(
            parse_upload, upload.file, upload.filename or "", upload.content_type,
            target=fields.target, task=fields.task, limits=settings,
        )  # fmt: skip
    name = fields.name or PurePath(upload.filename or DEFAULT_NAME).stem or DEFAULT_NAME
    return DatasetUpload(name=name[:256], parsed=parsed)


def _form_parts(form: FormData) -> tuple[UploadFile, _FormFields]:
    """The file part and the validated text fields; 422 for unknown fields or a missing file."""
    unknown = sorted(set(form.keys()) - FORM_FIELDS)
    if unknown:
        raise Unprocessable(
            f"unknown form field(s) {unknown}; use file, name, target, task",
            errors=[field_error(["body", name], "unknown field") for name in unknown],
        )
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise Unprocessable(
            "the form needs a 'file' part holding the dataset",
            errors=[field_error(["body", "file"], "a file is required")],
        )
    texts = {k: v for k, v in form.items() if k != "file" and isinstance(v, str)}
    return upload, _validated(_FormFields, texts, loc=["body"])


def _metadata(parsed: ParsedDataset) -> dict[str, Any]:
    classes = parsed.classes
    return {
        "task": parsed.task,
        "n_samples": int(parsed.X.shape[0]),
        "n_features": int(parsed.X.shape[1]),
        "n_targets": 1 if parsed.y.ndim == 1 else int(parsed.y.shape[1]),
        "feature_names": [str(name) for name in parsed.feature_names],
        "target_name": parsed.target_name,
        "classes": None
        if classes is None
        else [c.item() if isinstance(c, np.generic) else c for c in classes],
    }


def store_dataset_upload(
    database: Database, *, owner: str, upload: DatasetUpload, idempotency_key: str | None
) -> Dataset:
    """Store the arrays (once per hash) and a dataset row; replay an earlier Idempotency-Key."""
    arrays, sha256 = canonical_bytes(upload.parsed)
    meta = _metadata(upload.parsed)  # names and task too: the same arrays under other names differ
    key = idempotency_key
    request_sha256 = fingerprint({"name": upload.name, "sha256": sha256, "meta": meta})
    try:
        with database.write() as session:
            replayed = replayed_resource_id(
                session, owner=owner, scope=DATASETS_SCOPE, key=key, request_sha256=request_sha256,
                retention_hours=database.settings.idempotency_hours,
            )
            if replayed is not None:
                return _replayed_dataset(session, owner=owner, dataset_id=replayed)
            dataset = crud.store_dataset(
                session, owner=owner, name=upload.name, arrays=arrays, sha256=sha256, meta=meta,
            )  # fmt: skip
            if key is not None:
                crud.save_idempotency_record(
                    session, owner=owner, scope=DATASETS_SCOPE, key=key,
                    request_sha256=request_sha256, resource_id=dataset.id, status_code=201,
                )  # fmt: skip
            return dataset
    except IntegrityError as exc:  # a concurrent duplicate on databases without a global write lock
        raise Conflict("a concurrent request stored the same data or key; retry it") from exc


def _replayed_dataset(session: Session, *, owner: str, dataset_id: str) -> Dataset:
    dataset = crud.get_dataset(session, owner=owner, dataset_id=dataset_id)
    if dataset is None:
        raise Conflict("the dataset made with this Idempotency-Key was deleted; use a new key")
    return dataset
