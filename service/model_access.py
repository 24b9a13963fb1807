"""What the model routes need before the engine runs: the cached model, parsed bodies, arrays.

Bodies are validated straight from the raw bytes by pydantic-core, several times faster than
FastAPI's default stdlib json.loads followed by validation; plain nested prediction rows skip even
that (service/json_rows.py).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, TypeVar

import numpy as np
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from engine.model import Model as EngineModel
from service import crud
from service.db import Database
from service.deps import ModelDep
from service.json_rows import inputs_matrix
from service.model_cache import ModelCache
from service.model_inputs import (
    checked_feature_matrix,
    class_indices,
    feature_matrix,
    regression_targets,
)
from service.model_schemas import EvaluateRequest, GradientsRequest, PredictRequest
from service.models import Dataset, Model
from service.npy_inputs import npy_matrix
from service.problems import NotFound, Unprocessable, field_error
from service.settings import Settings

__all__ = [
    "EngineModelDep",
    "cached_engine_model",
    "evaluation_data",
    "gradient_data",
    "parse_body",
    "prediction_rows",
    "run_sized",
]

Body = TypeVar("Body", bound=BaseModel)
Result = TypeVar("Result")
# Bodies up to 64 kB hold a few thousand numbers: parsed and predicted in well under a millisecond.
INLINE_BODY_BYTES = 64 * 1024


def _weights(database: Database, model_id: str) -> bytes:
    with database.read() as session:
        data = crud.model_weights(session, model_id=model_id)
    if data is None:  # models and weights are published in one transaction; never expected
        raise NotFound(f"model {model_id!r} has no stored weights")
    return data


async def cached_engine_model(model: ModelDep, request: Request) -> EngineModel:
    """The deserialized model from the cache; a miss loads it off the event loop."""
    cache: ModelCache = request.app.state.model_cache
    cached = cache.engines.get(model.id)
    if cached is not None:
        return cached
    load = partial(_weights, request.app.state.database, model.id)
    return await run_in_threadpool(cache.engine, model.id, load)


async def run_sized(work: Callable[[], Result], *, size: int, engine: EngineModel) -> Result:
    """Small work inline on the event loop, big work in a worker thread.

    A thread hop costs more than parsing a few rows and one small forward pass. The model's lock is
    checked so that a small request does not wait on the loop behind a big one on the same model.
    """
    if size <= INLINE_BODY_BYTES and not engine.lock.locked():
        return work()
    return await run_in_threadpool(work)


EngineModelDep = Annotated[EngineModel, Depends(cached_engine_model)]


def parse_body(schema: type[Body], body: bytes) -> Body:
    """Validate a JSON body from its bytes; errors are 422 problems located under "body"."""
    try:
        return schema.model_validate_json(body)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from None


def _targets(targets: list[Any], model: Model, n_samples: int) -> np.ndarray:
    if model.classes is not None:
        return class_indices(targets, classes=model.classes, n_samples=n_samples)
    return regression_targets(targets, n_targets=_n_outputs(model), n_samples=n_samples)


def _n_outputs(model: Model) -> int:
    return int(model.network["layers"][-1]["units"])


def prediction_rows(body: bytes, model: Model, *, max_rows: int) -> np.ndarray:
    """The rows of a predict body: nested lists (the simdjson bulk path, or the schema for any
    other body, which names what is wrong) or base64 `.npy`."""
    rows = inputs_matrix(body)
    if rows is not None:
        return checked_feature_matrix(rows, n_features=model.n_features, max_rows=max_rows)
    parsed = parse_body(PredictRequest, body)
    if parsed.inputs_npy is not None:
        return npy_matrix(parsed.inputs_npy, n_features=model.n_features, max_rows=max_rows)
    return feature_matrix(parsed.inputs or [], n_features=model.n_features, max_rows=max_rows)


def gradient_data(
    request: GradientsRequest | EvaluateRequest, model: Model, *, settings: Settings
) -> tuple[np.ndarray, np.ndarray]:
    assert request.inputs is not None and request.targets is not None
    X = feature_matrix(
        request.inputs, n_features=model.n_features, max_rows=settings.max_predict_rows
    )
    return X, _targets(list(request.targets), model, X.shape[0])


def evaluation_data(
    request: EvaluateRequest, model: Model, *, owner: str, database: Database, settings: Settings
) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) from the request's rows, or from a stored dataset, labels mapped to the model's."""
    if request.dataset_id is None:
        return gradient_data(request, model, settings=settings)
    with database.read() as session:
        dataset = crud.get_dataset(session, owner=owner, dataset_id=request.dataset_id)
        arrays = (
            crud.dataset_arrays(session, sha256=dataset.sha256)
            if dataset and dataset.sha256
            else None
        )
    if dataset is None or arrays is None:
        raise NotFound(
            f"dataset {request.dataset_id!r} does not exist",
            errors=[field_error(["body", "dataset_id"], "no such dataset")],
        )
    _check_compatible(dataset, model)
    with np.load(io.BytesIO(arrays), allow_pickle=False) as npz:
        X, y = np.asarray(npz["X"], dtype=np.float64), np.asarray(npz["y"])
    if model.classes is None:
        return X, y.astype(np.float64).reshape(X.shape[0], -1)
    labels = [dataset.classes[i] for i in y.tolist()] if dataset.classes else y.tolist()
    return X, class_indices(labels, classes=model.classes, n_samples=X.shape[0])


def _check_compatible(dataset: Dataset, model: Model) -> None:
    problem = None
    if dataset.task != model.task:
        problem = f"the dataset is for {dataset.task} but the model does {model.task}"
    elif dataset.n_features != model.n_features:
        problem = (
            f"the model expects {model.n_features} features; the dataset has {dataset.n_features}"
        )
    elif model.task == "regression" and dataset.n_targets != _n_outputs(model):
        problem = (
            f"the model predicts {_n_outputs(model)} target(s); the dataset has {dataset.n_targets}"
        )
    if problem is not None:
        raise Unprocessable(problem, errors=[field_error(["body", "dataset_id"], problem)])
