"""/v1/models: trained models, predictions, evaluation, weights, diagnostics, gradients."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from service import crud, inference
from service.auth import OwnerDep
from service.deps import DatabaseDep, ModelDep, PageDep, RawBodyDep, SettingsDep, closed_query
from service.model_access import (
    EngineModelDep,
    cached_engine_model,
    evaluation_data,
    gradient_data,
    parse_body,
    prediction_rows,
    run_sized,
)
from service.model_schemas import (
    ClassificationEvaluation,
    DiagnosticsOut,
    EvaluateRequest,
    GradientsOut,
    GradientsRequest,
    ModelOut,
    PredictionOut,
    RegressionEvaluation,
    WeightsJson,
)
from service.openapi import error_responses, json_request_body
from service.schemas import Page
from service.views import diagnostics_out, model_out
from service.weights_export import weight_arrays, weights_npz

__all__ = ["router"]

router = APIRouter(prefix="/v1/models", tags=["models"])
NPZ_MEDIA_TYPE = "application/octet-stream"


@router.get(
    "",
    operation_id="list_models",
    responses=error_responses(422),
    dependencies=[closed_query("limit", "offset")],
)
def list_models(owner: OwnerDep, database: DatabaseDep, page: PageDep) -> Page[ModelOut]:
    """List your trained models, newest first."""
    with database.read() as session:
        items, total = crud.list_models(session, owner=owner, limit=page.limit, offset=page.offset)
    return Page(
        items=[model_out(m) for m in items], total=total, limit=page.limit, offset=page.offset
    )


@router.get("/{model_id}", operation_id="get_model", responses=error_responses(404, 422))
def get_model(model: ModelDep) -> ModelOut:
    """Read a model: network, parameter count, layer shapes, classes, final metrics."""
    return model_out(model)


@router.post(
    "/{model_id}/predict",
    operation_id="predict",
    responses=error_responses(404, 413, 422),
    openapi_extra={
        "requestBody": json_request_body("PredictRequest", description="Rows to predict.")
    },
)
async def predict(model: ModelDep, request: Request) -> PredictionOut:
    """Predict class labels with probabilities, or values, for rows of raw features."""
    engine_model = await cached_engine_model(model, request)  # a call, not a dependency: hot path
    body = await request.body()
    max_rows = request.app.state.settings.max_predict_rows

    def work() -> PredictionOut:
        X = prediction_rows(body, model, max_rows=max_rows)
        return inference.predict(engine_model, X, classes=model.classes)

    return await run_sized(work, size=len(body), engine=engine_model)


@router.post(
    "/{model_id}/evaluate",
    operation_id="evaluate",
    responses=error_responses(404, 413, 422),
    openapi_extra={
        "requestBody": json_request_body(
            "EvaluateRequest", description="A stored dataset, or rows with their targets."
        )
    },
)
def evaluate(
    model: ModelDep,
    engine_model: EngineModelDep,
    body: RawBodyDep,
    owner: OwnerDep,
    database: DatabaseDep,
    settings: SettingsDep,
) -> ClassificationEvaluation | RegressionEvaluation:
    """Loss, accuracy and confusion matrix (classification) or mse, mae and r² (regression)."""
    request = parse_body(EvaluateRequest, body)
    X, y = evaluation_data(request, model, owner=owner, database=database, settings=settings)
    return inference.evaluate(engine_model, X, y, classes=model.classes)


@router.get(
    "/{model_id}/weights",
    operation_id="get_weights",
    response_model=WeightsJson,
    dependencies=[closed_query("format")],
    responses={
        200: {
            "description": "An .npz of plain numeric arrays (allow_pickle=False), or JSON.",
            "content": {NPZ_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        },
        **error_responses(404, 422),
    },
)
def get_weights(
    model: ModelDep,
    engine_model: EngineModelDep,
    format: Annotated[Literal["npz", "json"], Query(description="npz (default) or json.")] = "npz",
) -> WeightsJson | Response:
    """Download the weights W1, b1, … (z = W a + b) and the input standardisation mean, scale."""
    if format == "json":
        arrays = weight_arrays(engine_model)
        return WeightsJson(
            model_id=model.id,
            arrays={k: v.tolist() for k, v in arrays.items()},
            shapes={k: list(v.shape) for k, v in arrays.items()},
        )
    headers = {"Content-Disposition": f'attachment; filename="model-{model.id}.npz"'}
    return Response(weights_npz(engine_model), media_type=NPZ_MEDIA_TYPE, headers=headers)


@router.get(
    "/{model_id}/diagnostics", operation_id="get_diagnostics", responses=error_responses(404, 422)
)
def get_diagnostics(model: ModelDep, database: DatabaseDep) -> DiagnosticsOut:
    """Per-epoch, per-layer gradient and activation statistics, and findings with advice."""
    with database.read() as session:
        records = crud.epoch_records(session, job_id=model.job_id)
    return diagnostics_out(model, records)


@router.post(
    "/{model_id}/gradients",
    operation_id="gradients",
    responses=error_responses(404, 413, 422),
    openapi_extra={
        "requestBody": json_request_body(
            "GradientsRequest", description="Rows and targets to differentiate the mean loss on."
        )
    },
)
def gradients(
    model: ModelDep, engine_model: EngineModelDep, body: RawBodyDep, settings: SettingsDep
) -> GradientsOut:
    """Exact gradients of the mean loss over the given rows at the model's weights, per layer."""
    request = parse_body(GradientsRequest, body)
    X, y = gradient_data(request, model, settings=settings)
    return inference.gradients(engine_model, X, y, full=request.full, include_l2=request.include_l2)
