"""/v1/datasets in-process: formats, metadata, dedup by hash, bad input → problem documents."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import func, select

from service.models import DatasetBlob
from service.settings import Settings
from tests.service.api_helpers import (
    IRIS_LABELS,
    api_client,
    assert_problem,
    blobs,
    create_dataset,
    csv_bytes,
    finished_job,
    iris_like_csv,
    job_body,
    make_settings,
    npz_bytes,
    upload_csv,
    upload_json,
)

pytestmark = pytest.mark.anyio


async def test_csv_upload_returns_metadata_with_original_labels(api: httpx.AsyncClient) -> None:
    response = await upload_csv(api, iris_like_csv(n_per_class=10), name="iris")
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert response.headers["location"] == f"/v1/datasets/{dataset['id']}"
    assert dataset["name"] == "iris"
    assert dataset["task"] == "classification"
    assert (dataset["n_samples"], dataset["n_features"]) == (30, 4)
    assert dataset["feature_names"] == ["f0", "f1", "f2", "f3"]
    assert dataset["classes"] == sorted(IRIS_LABELS)
    assert len(dataset["sha256"]) == 64


async def test_csv_target_column_and_task_are_form_fields(api: httpx.AsyncClient) -> None:
    X, _ = blobs(n_per_class=10)
    content = csv_bytes(X[:, 1:], X[:, 0], target="value")
    response = await upload_csv(api, content, target="value", task="regression")
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert dataset["task"] == "regression"
    assert dataset["classes"] is None
    assert dataset["target_name"] == "value"
    assert dataset["n_features"] == 3


async def test_npz_upload_is_accepted(api: httpx.AsyncClient) -> None:
    X, y = blobs(n_per_class=5)
    files = {"file": ("data.npz", npz_bytes(X=X, y=y), "application/octet-stream")}
    response = await api.post("/v1/datasets", files=files)
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "data"  # the file name's stem when no name is given
    assert response.json()["classes"] == [0, 1, 2]


async def test_json_body_upload_is_accepted(api: httpx.AsyncClient) -> None:
    body = {
        "name": "tiny",
        "X": [[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [1.0, 1.0]],
        "y": ["a", "b", "a", "b"],
    }
    response = await upload_json(api, body)
    assert response.status_code == 201, response.text
    assert response.json()["classes"] == ["a", "b"]
    assert response.json()["n_samples"] == 4


async def test_same_arrays_are_stored_once(api: httpx.AsyncClient, app) -> None:  # type: ignore[no-untyped-def]
    content = iris_like_csv(n_per_class=5)
    first = (await upload_csv(api, content, name="one")).json()
    second = (await upload_csv(api, content, name="two")).json()
    assert first["id"] != second["id"]
    assert first["sha256"] == second["sha256"]
    with app.state.database.read() as session:
        assert session.scalar(select(func.count()).select_from(DatasetBlob)) == 1


async def test_list_is_newest_first_and_paginated(api: httpx.AsyncClient) -> None:
    ids = [(await create_dataset(api, seed=seed))["id"] for seed in range(3)]
    page = (await api.get("/v1/datasets", params={"limit": 2})).json()
    assert page["total"] == 3 and page["limit"] == 2 and page["offset"] == 0
    assert [d["id"] for d in page["items"]] == ids[::-1][:2]
    rest = (await api.get("/v1/datasets", params={"limit": 2, "offset": 2})).json()
    assert [d["id"] for d in rest["items"]] == ids[:1]


async def test_get_unknown_dataset_is_404_problem(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get("/v1/datasets/0123456789abcdef"), 404, "0123456789abcdef")


async def test_delete_then_get_is_404_and_unlisted(api: httpx.AsyncClient, app) -> None:  # type: ignore[no-untyped-def]
    dataset = await create_dataset(api)
    response = await api.delete(f"/v1/datasets/{dataset['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await api.get(f"/v1/datasets/{dataset['id']}"), 404)
    assert (await api.get("/v1/datasets")).json()["total"] == 0
    with app.state.database.read() as session:  # the arrays are freed
        assert session.scalar(select(func.count()).select_from(DatasetBlob)) == 0


async def test_delete_keeps_arrays_shared_with_another_dataset(api: httpx.AsyncClient, app) -> None:  # type: ignore[no-untyped-def]
    content = iris_like_csv(n_per_class=5)
    first = (await upload_csv(api, content)).json()
    await upload_csv(api, content)
    assert (await api.delete(f"/v1/datasets/{first['id']}")).status_code == 204
    with app.state.database.read() as session:
        assert session.scalar(select(func.count()).select_from(DatasetBlob)) == 1


async def test_delete_is_refused_while_a_queued_job_uses_it(api: httpx.AsyncClient) -> None:
    dataset = await create_dataset(api)
    job = await api.post("/v1/jobs", json=job_body(dataset["id"]))
    assert job.status_code == 202, job.text
    assert_problem(await api.delete(f"/v1/datasets/{dataset['id']}"), 409, "job")
    assert (await api.post(f"/v1/jobs/{job.json()['id']}/cancel")).status_code == 202
    assert (await api.delete(f"/v1/datasets/{dataset['id']}")).status_code == 204


async def test_delete_is_refused_while_a_queued_job_validates_on_it_until_cancelled(
    api: httpx.AsyncClient,
) -> None:
    train = await create_dataset(api)
    validation = await create_dataset(api, seed=5)  # same features and classes, other rows
    body = job_body(train["id"], validation={"dataset_id": validation["id"]})
    job = await api.post("/v1/jobs", json=body)
    assert job.status_code == 202, job.text
    assert job.json()["validation_dataset_id"] == validation["id"]
    assert_problem(await api.delete(f"/v1/datasets/{validation['id']}"), 409, "job")
    assert (await api.get(f"/v1/datasets/{validation['id']}")).status_code == 200
    assert (await api.post(f"/v1/jobs/{job.json()['id']}/cancel")).status_code == 202
    assert (await api.delete(f"/v1/datasets/{validation['id']}")).status_code == 204
    assert_problem(await api.get(f"/v1/datasets/{validation['id']}"), 404)


async def test_delete_of_a_validation_dataset_succeeds_once_its_job_has_finished(
    tmp_path: Path,
) -> None:
    # Queued under an app without workers (so the 409 cannot race the job's end), then finished
    # by an app with one worker on the same data directory.
    async with api_client(make_settings(tmp_path)) as http:
        train = await create_dataset(http)
        validation = await create_dataset(http, seed=5)
        body = job_body(train["id"], validation={"dataset_id": validation["id"]}, epochs=2)
        job = await http.post("/v1/jobs", json=body)
        assert job.status_code == 202, job.text
        assert_problem(await http.delete(f"/v1/datasets/{validation['id']}"), 409, "job")
    async with api_client(make_settings(tmp_path, workers=1)) as http:
        finished = await finished_job(http, job.json()["id"])
        assert finished["status"] == "succeeded", finished
        assert finished["metrics"]["val_loss"] is not None  # it did validate on the dataset
        assert (await http.delete(f"/v1/datasets/{validation['id']}")).status_code == 204
        assert_problem(await http.get(f"/v1/datasets/{validation['id']}"), 404)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", ()),
        (b"a,b,target\n", ()),
        (b"a,b,target\n1,2,x\n3,4\n", ()),
        (b"a,b,target\n1,abc,x\n3,4,y\n", ("abc",)),
        (b"a,b,target\n1,nan,x\n3,4,y\n", ()),
        (b"a,b,target\n1,1e400,x\n3,4,y\n", ()),
        (b"a,b,target\n1,2,x\n3,4,x\n", ("class",)),
    ],
    ids=["empty", "header-only", "ragged", "string-feature", "nan", "inf", "one-class"],
)
async def test_bad_csv_is_a_422_problem(
    api: httpx.AsyncClient, content: bytes, words: tuple[str, ...]
) -> None:
    problem = assert_problem(await upload_csv(api, content), 422, *words)
    assert problem["errors"], problem


async def test_json_body_with_nan_token_is_422(api: httpx.AsyncClient) -> None:
    body = '{"X": [[NaN, 1.0], [1.0, 2.0]], "y": [0, 1]}'
    response = await api.post(
        "/v1/datasets", content=body, headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 422)


async def test_json_body_with_unknown_key_is_422(api: httpx.AsyncClient) -> None:
    body = {"X": [[0.0], [1.0]], "y": [0, 1], "path": "/etc/passwd"}
    problem = assert_problem(await upload_json(api, body), 422)
    assert ["body", "path"] in [e["loc"] for e in problem["errors"]]


async def test_json_body_that_is_not_json_is_422(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/datasets", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 422, "json")


async def test_form_without_file_is_422(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/datasets", data={"name": "x"}, files={"other": ("x.csv", b"a,b\n1,2\n", "text/csv")}
    )
    assert_problem(response, 422)


async def test_other_media_type_is_415(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/datasets", content=b"a,b\n1,2\n", headers={"Content-Type": "text/csv"}
    )
    assert_problem(response, 415)


async def test_unsupported_file_type_is_415(api: httpx.AsyncClient) -> None:
    files = {"file": ("data.xlsx", b"PK\x03\x04junk", "application/vnd.ms-excel")}
    assert_problem(await api.post("/v1/datasets", files=files), 415)


async def test_npz_with_object_array_is_422(api: httpx.AsyncClient) -> None:
    content = npz_bytes(X=np.array([[1, "a"]], dtype=object), y=np.array([0]))
    files = {"file": ("evil.npz", content, "application/octet-stream")}
    assert_problem(await api.post("/v1/datasets", files=files), 422)


async def test_npz_with_unicode_labels_is_a_classification_dataset(
    api: httpx.AsyncClient,
) -> None:
    X, ids = blobs(n_per_class=5)
    y = np.array(["cat", "dog", "emu"])[ids]  # dtype <U3
    files = {"file": ("pets.npz", npz_bytes(X=X, y=y), "application/octet-stream")}
    response = await api.post("/v1/datasets", files=files)
    assert response.status_code == 201, response.text
    dataset = (await api.get(f"/v1/datasets/{response.json()['id']}")).json()
    assert dataset["task"] == "classification"
    assert dataset["classes"] == ["cat", "dog", "emu"]
    assert (dataset["n_samples"], dataset["n_targets"]) == (15, 1)


async def test_npz_with_unicode_labels_and_task_regression_is_422(api: httpx.AsyncClient) -> None:
    content = npz_bytes(X=np.ones((4, 2)), y=np.array(["cat", "dog", "cat", "dog"]))
    files = {"file": ("pets.npz", content, "application/octet-stream")}
    response = await api.post("/v1/datasets", files=files, data={"task": "regression"})
    assert_problem(response, 422, "not a number")


@pytest.mark.parametrize(
    ("y", "words"),
    [(np.array([b"cat", b"dog"] * 2), ("|S3", "unicode")),
     (np.array([["cat"], ["dog"]] * 2), ("1-D",)),
     (np.array(["cat", "dog"] * 2, dtype=object), ("|O", "unicode"))],
    ids=["bytes", "two-dimensional", "object"],
)  # fmt: skip
async def test_npz_with_unusable_string_labels_is_422(
    api: httpx.AsyncClient, y: np.ndarray, words: tuple[str, ...]
) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, X=np.ones((4, 2)), y=y, allow_pickle=True)  # test data only: object arrays
    files = {"file": ("pets.npz", buffer.getvalue(), "application/octet-stream")}
    assert_problem(await api.post("/v1/datasets", files=files), 422, *words)


async def test_npz_with_labels_wider_than_a_csv_cell_is_422_before_loading(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    width = settings.max_field_bytes + 1  # 4 labels of this width would be 16 MiB: send a header
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": f"<U{width}", "fortran_order": False, "shape": (4,)}
    )
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as npz:
        npz.writestr("X.npy", npz_member(np.ones((4, 2))))
        npz.writestr("y.npy", header.getvalue())
    files = {"file": ("pets.npz", archive.getvalue(), "application/octet-stream")}
    problem = assert_problem(await api.post("/v1/datasets", files=files), 422, "y.npy", str(width))
    assert problem["errors"][0]["width"] == width


def npz_member(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


async def test_upload_idempotency_key_replays_the_first_dataset(api: httpx.AsyncClient) -> None:
    content = iris_like_csv(n_per_class=5)
    headers = {"Idempotency-Key": "upload-1"}
    files = {"file": ("d.csv", content, "text/csv")}
    first = await api.post("/v1/datasets", files=files, headers=headers)
    again = await api.post("/v1/datasets", files=files, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    other = {"file": ("d.csv", iris_like_csv(n_per_class=6), "text/csv")}
    assert_problem(
        await api.post("/v1/datasets", files=other, headers=headers), 422, "Idempotency-Key"
    )
    assert (await api.get("/v1/datasets")).json()["total"] == 1


async def test_the_same_numbers_under_other_names_are_not_a_replay(api: httpx.AsyncClient) -> None:
    body = {"X": [[1, 2], [3, 4], [5, 6]], "y": [0, 1, 0], "feature_names": ["a", "b"]}
    headers = {"Idempotency-Key": "named"}
    first = await api.post("/v1/datasets", json=body, headers=headers)
    assert first.status_code == 201, first.text
    renamed = await api.post("/v1/datasets", json=body | {"feature_names": ["c", "d"]},
                             headers=headers)
    assert_problem(renamed, 422, "Idempotency-Key")
    fresh = await api.post("/v1/datasets", json=body | {"feature_names": ["c", "d"]})
    assert fresh.json()["feature_names"] == ["c", "d"]


async def test_upload_idempotency_key_of_a_deleted_dataset_is_409_not_a_dangling_201(
    api: httpx.AsyncClient,
) -> None:
    files = {"file": ("d.csv", iris_like_csv(n_per_class=5), "text/csv")}
    first = await api.post("/v1/datasets", files=files, headers={"Idempotency-Key": "gone"})
    dataset_id = first.json()["id"]
    assert (await api.delete(f"/v1/datasets/{dataset_id}")).status_code == 204
    replay = await api.post("/v1/datasets", files=files, headers={"Idempotency-Key": "gone"})
    assert_problem(replay, 409, "deleted", "new key")
    fresh = await api.post("/v1/datasets", files=files, headers={"Idempotency-Key": "fresh"})
    assert fresh.status_code == 201 and fresh.json()["id"] != dataset_id
    assert (await api.get(f"/v1/datasets/{fresh.json()['id']}")).status_code == 200
    assert (await api.get("/v1/datasets")).json()["total"] == 1


async def test_openapi_documents_the_409_of_a_deleted_datasets_key(api: httpx.AsyncClient) -> None:
    create = (await api.get("/openapi.json")).json()["paths"]["/v1/datasets"]["post"]
    assert "409" in create["responses"]
    header = next(p for p in create["parameters"] if p["name"] == "Idempotency-Key")
    assert "409" in header["description"] and "deleted" in header["description"]


async def test_the_documented_json_body_example_is_a_valid_upload(api: httpx.AsyncClient) -> None:
    components = (await api.get("/openapi.json")).json()["components"]["schemas"]
    (example,) = components["DatasetJsonBody"]["examples"]
    response = await api.post("/v1/datasets", json=example)
    assert response.status_code == 201, response.text
    assert (response.json()["n_samples"], response.json()["classes"]) == (4, [0, 1])


async def test_concurrent_json_uploads_all_succeed(api: httpx.AsyncClient) -> None:
    body = json.dumps({"X": [[0.0], [1.0], [2.0], [3.0]], "y": [0, 1, 0, 1]})
    responses = await asyncio.gather(
        *[
            api.post("/v1/datasets", content=body, headers={"Content-Type": "application/json"})
            for _ in range(8)
        ]
    )
    assert [r.status_code for r in responses] == [201] * 8
    assert (await api.get("/v1/datasets")).json()["total"] == 8
