"""/v1/datasets: upload (multipart or JSON), list, read, delete."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from service import crud
from service.auth import OwnerDep
from service.dataset_upload import read_dataset_request, store_dataset_upload
from service.deps import DatabaseDep, DatasetDep, PageDep, SettingsDep, closed_query
from service.idempotency import IdempotencyKeyHeader
from service.openapi import dataset_request_body, error_responses, links
from service.problems import Conflict
from service.schemas import DatasetOut, Page
from service.views import dataset_out

__all__ = ["router"]

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])


@router.post(
    "",
    status_code=201,
    operation_id="create_dataset",
    responses={
        201: {
            "description": "The stored dataset.",
            "links": links(
                GetDataset=("get_dataset", "dataset_id"),
                DeleteDataset=("delete_dataset", "dataset_id"),
            ),
        },
        **error_responses(400, 409, 413, 415, 422),
    },
    openapi_extra={"requestBody": dataset_request_body()},
)
async def create_dataset(
    request: Request,
    response: Response,
    owner: OwnerDep,
    database: DatabaseDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> DatasetOut:
    """Upload a dataset: a CSV/NPZ/JSON file as multipart/form-data, or a JSON body {X, y}."""
    upload = await read_dataset_request(request, settings)
    dataset = await run_in_threadpool(
        store_dataset_upload, database, owner=owner, upload=upload, idempotency_key=idempotency_key
    )
    response.headers["Location"] = f"/v1/datasets/{dataset.id}"
    return dataset_out(dataset)


@router.get(
    "",
    operation_id="list_datasets",
    responses=error_responses(422),
    dependencies=[closed_query("limit", "offset")],
)
def list_datasets(owner: OwnerDep, database: DatabaseDep, page: PageDep) -> Page[DatasetOut]:
    """List your datasets, newest first."""
    with database.read() as session:
        items, total = crud.list_datasets(
            session, owner=owner, limit=page.limit, offset=page.offset
        )
    return Page(
        items=[dataset_out(d) for d in items], total=total, limit=page.limit, offset=page.offset
    )


@router.get("/{dataset_id}", operation_id="get_dataset", responses=error_responses(404, 422))
def get_dataset(dataset: DatasetDep) -> DatasetOut:
    """Read a dataset's metadata (shape, task, classes, hash)."""
    return dataset_out(dataset)


@router.delete(
    "/{dataset_id}",
    status_code=204,
    operation_id="delete_dataset",
    responses=error_responses(404, 409, 422),
)
def delete_dataset(dataset: DatasetDep, owner: OwnerDep, database: DatabaseDep) -> Response:
    """Delete a dataset; refused (409) while a queued or running job uses it."""
    with database.write() as session:
        active = crud.delete_dataset_unless_used(session, owner=owner, dataset_id=dataset.id)
    if active:
        raise Conflict(
            f"{active} queued or running job(s) use dataset {dataset.id!r}; "
            "cancel them or wait until they finish"
        )
    return Response(status_code=204)
