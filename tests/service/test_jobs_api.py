"""/v1/jobs in-process, no workers: submission checks, listing, cancel, idempotency, admission."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from service.app import create_app
from service.jobs import store
from service.models import EpochRecord, IdempotencyRecord, Job, utcnow
from service.settings import Settings
from tests.service.api_helpers import (
    assert_problem,
    client,
    create_dataset,
    job_body,
    job_count,
    make_settings,
    running_app,
    upload_json,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, max_queued_jobs_per_owner=5)


async def test_submit_returns_202_with_location_and_queued_job(api: httpx.AsyncClient) -> None:
    dataset = await create_dataset(api)
    response = await api.post("/v1/jobs", json=job_body(dataset["id"], epochs=4))
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued"
    assert (job["epoch"], job["epochs"]) == (0, 4)
    assert job["model_id"] is None and job["metrics"] is None
    assert (await api.get(f"/v1/jobs/{job['id']}")).json() == job


async def test_submit_fills_defaults_resolves_aliases_and_draws_a_seed(
    api: httpx.AsyncClient,
) -> None:
    dataset = await create_dataset(api)
    body = job_body(dataset["id"])
    del body["seed"], body["optimizer"], body["batch_size"], body["epochs"]
    body["network"]["layers"][0]["activation"] = "sigmoid"
    spec = (await api.post("/v1/jobs", json=body)).json()["spec"]
    assert spec["network"]["layers"][0]["activation"] == {"name": "logistic"}
    assert spec["loss"] == "cross_entropy"
    assert spec["optimizer"] == {
        "name": "sgd",
        "learning_rate": 0.01,
        "momentum": 0.0,
        "nesterov": False,
        "schedule": None,
    }
    assert (spec["batch_size"], spec["epochs"], spec["validation"]) == (32, 10, None)
    assert isinstance(spec["seed"], int) and 0 <= spec["seed"] < 2**63


async def test_a_body_of_only_dataset_and_network_gets_the_contract_defaults(
    api: httpx.AsyncClient,
) -> None:
    dataset = await create_dataset(api)
    body = {"dataset_id": dataset["id"], "network": job_body(dataset["id"])["network"]}
    response = await api.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    job = response.json()
    stored = (await api.get(f"/v1/jobs/{job['id']}")).json()
    for spec in (job["spec"], stored["spec"]):
        assert spec["validation"] is None and spec["early_stopping"] is None
        assert (spec["optimizer"]["name"], spec["optimizer"]["learning_rate"]) == ("sgd", 0.01)
        assert (spec["batch_size"], spec["epochs"], spec["l2"]) == (32, 10, 0.0)
        assert spec["standardize"] is True and spec["dtype"] == "float32"
        assert spec["loss"] == "cross_entropy"  # from the classification task and softmax output
        assert type(spec["seed"]) is int and 0 <= spec["seed"] < 2**63
    assert stored["spec"]["seed"] == job["spec"]["seed"]
    assert (job["epochs"], job["validation_dataset_id"]) == (10, None)


async def test_silu_is_stored_as_swish_with_beta_1_and_silu_with_another_beta_is_422(
    api: httpx.AsyncClient, app: FastAPI
) -> None:
    dataset = await create_dataset(api)
    body = job_body(dataset["id"])
    body["network"]["layers"][0] = {"units": 4, "activation": "silu"}
    response = await api.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    layer = response.json()["spec"]["network"]["layers"][0]
    assert layer["activation"] == {"name": "swish", "beta": 1.0, "learnable": False}
    assert job_count(app.state.database) == 1

    body["network"]["layers"][0] = {"units": 4, "activation": {"name": "silu", "beta": 2.0}}
    problem = assert_problem(await api.post("/v1/jobs", json=body), 422)
    # the path into the body as sent: no union tag (pydantic's loc has "dense" after the index)
    assert [error["loc"] for error in problem["errors"]] == [
        ["body", "network", "layers", 0, "activation"]]
    assert "beta" in str(problem["errors"]), problem
    assert job_count(app.state.database) == 1


async def test_unknown_dataset_is_404_naming_it_and_creates_nothing(
    api: httpx.AsyncClient, app: FastAPI
) -> None:
    assert_problem(await api.post("/v1/jobs", json=job_body("feedbeef")), 404, "feedbeef")
    assert job_count(app.state.database) == 0


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"network": {"layers": [{"units": 4, "activation": "builtins.eval"}]}}, ("activation",)),
        ({"network": {"layers": [{"type": "os.system", "units": 3}]}}, ()),
        ({"unknown_key": 1}, ("unknown_key",)),
        ({"optimizer": {"name": "sgd", "learning_rate": -1}}, ("learning_rate",)),
        ({"validation": {"split": 1.5}}, ()),
        ({"early_stopping": {"patience": 3}}, ("validation",)),
    ],
    ids=["activation", "layer-type", "extra-key", "negative-lr", "split", "early-stop-no-val"],
)
async def test_invalid_specs_are_422_and_create_nothing(
    api: httpx.AsyncClient, app: FastAPI, change: dict[str, object], words: tuple[str, ...]
) -> None:
    dataset = await create_dataset(api)
    problem = assert_problem(await api.post("/v1/jobs", json=job_body(dataset["id"]) | change), 422)
    assert problem["errors"]
    assert all(w in str(problem) for w in words), problem
    assert "Traceback" not in str(problem)
    assert job_count(app.state.database) == 0


async def test_output_width_must_match_the_classes(api: httpx.AsyncClient, app: FastAPI) -> None:
    dataset = await create_dataset(api)  # 3 classes
    problem = assert_problem(
        await api.post("/v1/jobs", json=job_body(dataset["id"], n_classes=4)), 422, "3 classes"
    )
    assert problem["errors"][0]["loc"] == ["body", "network"]
    assert job_count(app.state.database) == 0


async def test_regression_data_needs_an_identity_output(api: httpx.AsyncClient) -> None:
    body = {"X": [[0.0], [1.0], [2.0], [3.0]], "y": [0.5, 1.5, 2.25, 3.125]}
    dataset = (await upload_json(api, body)).json()
    assert dataset["task"] == "regression"
    assert_problem(await api.post("/v1/jobs", json=job_body(dataset["id"], n_classes=1)), 422)
    good = job_body(dataset["id"])
    good["network"]["layers"][-1] = {"units": 1, "activation": "identity"}
    assert (await api.post("/v1/jobs", json=good)).status_code == 202


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"epochs": 10_001}, ("10001", "10000", "FEEDFORWARD_MAX_EPOCHS")),
        ({"batch_size": 70_000}, ("70000", "65536", "FEEDFORWARD_MAX_BATCH_SIZE")),
        (
            {"network": {"layers": [{"units": 9000}, {"units": 3, "activation": "softmax"}]}},
            ("9000", "8192"),
        ),
        (
            {"network": {"layers": [{"units": 4}] * 64 + [{"units": 3, "activation": "softmax"}]}},
            ("layers is 65", "64"),
        ),
        (
            {
                "network": {
                    "layers": [
                        {"units": 4096},
                        {"units": 4096},
                        {"units": 3, "activation": "softmax"},
                    ]
                }
            },
            ("parameter count", "10000000"),
        ),
    ],
    ids=["epochs", "batch-size", "width", "layers", "parameters"],
)
async def test_limits_are_422_naming_count_and_limit(
    api: httpx.AsyncClient, app: FastAPI, change: dict[str, object], words: tuple[str, ...]
) -> None:
    dataset = await create_dataset(api)
    problem = assert_problem(await api.post("/v1/jobs", json=job_body(dataset["id"]) | change), 422)
    assert all(w in str(problem["errors"]) for w in words), problem
    assert job_count(app.state.database) == 0


async def test_a_maxout_layer_is_as_wide_as_its_pieces(
    api: httpx.AsyncClient, app: FastAPI
) -> None:
    dataset = await create_dataset(api)
    layers = [{"type": "maxout", "units": 4097, "pieces": 2}, {"units": 3, "activation": "softmax"}]
    problem = assert_problem(
        await api.post("/v1/jobs", json=job_body(dataset["id"], network={"layers": layers})), 422,
        "4097 units × 2 pieces", "8194", "FEEDFORWARD_MAX_WIDTH",
    )
    assert problem["errors"][0]["loc"] == ["body", "network", "layers", 0, "units"]
    assert job_count(app.state.database) == 0


async def test_the_buffers_of_one_batch_are_budgeted(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, max_batch_bytes=4 * 2**20))  # 4 MiB
    async with running_app(app), client(app) as http:
        dataset = await create_dataset(http, n_per_class=100)  # 300 rows
        wide = {"layers": [{"type": "maxout", "units": 512, "pieces": 8},
                           {"units": 3, "activation": "softmax"}]}
        # (256 + 300 rows) × (3·512 + 2·512·8 + 4·3 + 1 values) × 4 bytes = 21.7 MB
        body = job_body(dataset["id"], network=wide, batch_size=256)
        problem = assert_problem(await http.post("/v1/jobs", json=body), 422,
                                 "FEEDFORWARD_MAX_BATCH_BYTES", "556 rows", "21663984")
        assert problem["errors"][0]["loc"] == ["body", "batch_size"]
        narrow = await http.post("/v1/jobs", json=job_body(dataset["id"]))
        assert narrow.status_code == 202, narrow.text


async def test_validation_dataset_must_match(api: httpx.AsyncClient) -> None:
    dataset = await create_dataset(api)
    other = (await upload_json(api, {"X": [[0.0], [1.0], [2.0]], "y": ["a", "b", "a"]})).json()
    body = job_body(dataset["id"], validation={"dataset_id": other["id"]})
    assert_problem(await api.post("/v1/jobs", json=body), 422, "features")
    same_kind = await create_dataset(api, seed=5)
    body = job_body(dataset["id"], validation={"dataset_id": same_kind["id"]})
    job = (await api.post("/v1/jobs", json=body)).json()
    assert job["validation_dataset_id"] == same_kind["id"]


async def test_list_filters_by_status(api: httpx.AsyncClient) -> None:
    dataset = await create_dataset(api)
    ids = [
        (await api.post("/v1/jobs", json=job_body(dataset["id"]))).json()["id"] for _ in range(3)
    ]
    await api.post(f"/v1/jobs/{ids[0]}/cancel")
    queued = (await api.get("/v1/jobs", params={"status": "queued"})).json()
    assert queued["total"] == 2 and {j["id"] for j in queued["items"]} == set(ids[1:])
    everything = (await api.get("/v1/jobs")).json()
    assert [j["id"] for j in everything["items"]] == ids[::-1]
    assert_problem(await api.get("/v1/jobs", params={"status": "paused"}), 422)


async def test_cancel_queued_job_is_immediate_and_a_second_cancel_is_409(
    api: httpx.AsyncClient,
) -> None:
    dataset = await create_dataset(api)
    job_id = (await api.post("/v1/jobs", json=job_body(dataset["id"]))).json()["id"]
    response = await api.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    assert response.json()["finished_at"] is not None
    assert_problem(await api.post(f"/v1/jobs/{job_id}/cancel"), 409, "finished")


async def test_cancel_running_job_sets_cancel_requested(
    api: httpx.AsyncClient, app: FastAPI
) -> None:
    dataset = await create_dataset(api)
    job_id = (await api.post("/v1/jobs", json=job_body(dataset["id"]))).json()["id"]
    with app.state.database.write() as session:  # what a worker's claim does
        session.execute(update(Job).where(Job.id == job_id).values(status="running", attempt=1))
    response = await api.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 202
    assert response.json()["status"] == "running"
    assert response.json()["cancel_requested"] is True


async def _job_with_epochs(api: httpx.AsyncClient, app: FastAPI, losses: list[float]) -> str:
    """A queued job with one committed epoch row per training loss, as a worker would leave."""
    dataset = await create_dataset(api)
    job_id: str = (await api.post("/v1/jobs", json=job_body(dataset["id"]))).json()["id"]
    with app.state.database.write() as session:
        session.add_all(
            EpochRecord(job_id=job_id, epoch=epoch, train_loss=loss, train_accuracy=0.5,
                        learning_rate=0.1, seconds=0.01, layers=[], findings=[])
            for epoch, loss in enumerate(losses, start=1))
    return job_id


async def test_metrics_are_one_row_per_epoch_with_null_for_non_finite(
    api: httpx.AsyncClient, app: FastAPI
) -> None:
    job_id = await _job_with_epochs(api, app, [0.9, float("nan")])
    response = await api.get(f"/v1/jobs/{job_id}/metrics")
    assert "NaN" not in response.text
    rows = response.json()["items"]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[0]["train_loss"] == 0.9 and rows[1]["train_loss"] is None


async def test_metrics_come_whole_by_default_beyond_the_usual_page(
    api: httpx.AsyncClient, app: FastAPI
) -> None:
    job_id = await _job_with_epochs(api, app, [1.0 / epoch for epoch in range(1, 121)])
    page = (await api.get(f"/v1/jobs/{job_id}/metrics")).json()
    assert [row["epoch"] for row in page["items"]] == list(range(1, 121))  # lists stop at 50
    assert (page["total"], page["limit"], page["offset"]) == (120, 10_000, 0)
    page = (await api.get(f"/v1/jobs/{job_id}/metrics?limit=5&offset=100")).json()
    assert [row["epoch"] for row in page["items"]] == [101, 102, 103, 104, 105]


async def test_unknown_job_is_404(api: httpx.AsyncClient) -> None:
    for path in ("/v1/jobs/nope", "/v1/jobs/nope/metrics"):
        assert_problem(await api.get(path), 404, "nope")
    assert_problem(await api.post("/v1/jobs/nope/cancel"), 404)


async def test_idempotency_key_replays_and_rejects_another_body(
    api: httpx.AsyncClient, app: FastAPI
) -> None:
    dataset = await create_dataset(api)
    headers = {"Idempotency-Key": "train-1"}
    first = await api.post("/v1/jobs", json=job_body(dataset["id"]), headers=headers)
    again = await api.post("/v1/jobs", json=job_body(dataset["id"]), headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    other = await api.post("/v1/jobs", json=job_body(dataset["id"], epochs=7), headers=headers)
    assert_problem(other, 422, "Idempotency-Key")
    without_key = await api.post("/v1/jobs", json=job_body(dataset["id"]))
    assert without_key.json()["id"] != first.json()["id"]
    assert job_count(app.state.database) == 2


async def test_a_replay_shows_the_model_of_a_job_that_has_succeeded_since(
    api: httpx.AsyncClient, app: FastAPI
) -> None:
    dataset = await create_dataset(api)
    headers = {"Idempotency-Key": "train-2"}
    first = (await api.post("/v1/jobs", json=job_body(dataset["id"]), headers=headers)).json()
    database, now = app.state.database, utcnow()
    with database.write() as session:  # a worker trains it and publishes its model
        store.claim_next(session, worker_id="w", now=now, lease_until=now + timedelta(minutes=1),
                         skip_locked=False)
    with database.write() as session:
        model_id = store.publish_model(session, job_id=first["id"], worker_id="w", model=b"m",
                                       now=utcnow(), result={"stop_reason": "max_epochs"})
    assert model_id is not None
    replay = await api.post("/v1/jobs", json=job_body(dataset["id"]), headers=headers)
    assert replay.status_code == 202
    assert (replay.json()["id"], replay.json()["status"]) == (first["id"], "succeeded")
    assert replay.json()["model_id"] == model_id == (
        await api.get(f"/v1/jobs/{first['id']}")).json()["model_id"]


async def test_an_idempotency_key_expires_after_its_retention(
    api: httpx.AsyncClient, app: FastAPI
) -> None:
    dataset = await create_dataset(api)
    headers = {"Idempotency-Key": "old-key"}
    first = (await api.post("/v1/jobs", json=job_body(dataset["id"]), headers=headers)).json()
    hours = app.state.database.settings.idempotency_hours
    with app.state.database.write() as session:  # the key was recorded a retention period ago
        session.execute(update(IdempotencyRecord).values(
            created_at=utcnow() - timedelta(hours=hours, minutes=1)))
    other_body = job_body(dataset["id"], epochs=7)  # a 422 while the key was remembered
    again = await api.post("/v1/jobs", json=other_body, headers=headers)
    assert again.status_code == 202 and again.json()["id"] != first["id"]
    with app.state.database.read() as session:
        assert len(session.execute(select(IdempotencyRecord)).all()) == 1  # the old one is gone


async def test_twenty_concurrent_identical_posts_make_one_job(
    api: httpx.AsyncClient, app: FastAPI
) -> None:
    dataset = await create_dataset(api)
    headers = {"Idempotency-Key": "burst"}
    responses = await asyncio.gather(
        *[api.post("/v1/jobs", json=job_body(dataset["id"]), headers=headers) for _ in range(20)]
    )
    assert {r.status_code for r in responses} <= {202, 409}
    assert len({r.json()["id"] for r in responses if r.status_code == 202}) == 1
    assert job_count(app.state.database) == 1


async def test_admission_is_429_with_retry_after_beyond_the_queue_limit(
    api: httpx.AsyncClient, app: FastAPI
) -> None:
    dataset = await create_dataset(api)
    for _ in range(5):
        assert (await api.post("/v1/jobs", json=job_body(dataset["id"]))).status_code == 202
    response = await api.post("/v1/jobs", json=job_body(dataset["id"]))
    assert_problem(response, 429, "5 jobs")
    assert int(response.headers["retry-after"]) > 0
    assert job_count(app.state.database) == 5


async def test_a_split_that_leaves_no_training_rows_is_422(api: httpx.AsyncClient) -> None:
    dataset = (await upload_json(api, {"X": [[0.0], [1.0]], "y": ["a", "b"]})).json()
    body = job_body(dataset["id"], n_classes=2, validation={"split": 0.9})
    assert_problem(await api.post("/v1/jobs", json=body), 422, "no training rows")
    body["validation"] = {"split": 0.5}
    assert (await api.post("/v1/jobs", json=body)).status_code == 202


async def test_validation_dataset_needs_the_same_classes(api: httpx.AsyncClient) -> None:
    train = (await upload_json(api, {"X": [[0.0], [1.0], [2.0]], "y": ["a", "b", "c"]})).json()
    fewer = (await upload_json(api, {"X": [[0.0], [2.0]], "y": ["a", "c"]})).json()
    body = job_body(train["id"], validation={"dataset_id": fewer["id"]})
    assert_problem(await api.post("/v1/jobs", json=body), 422, "classes")


async def test_every_mistake_in_a_body_is_reported_at_its_place(api: httpx.AsyncClient) -> None:
    dataset = await create_dataset(api)
    body = {"dataset_id": dataset["id"], "epochz": 3, "epochs": 0,
            "network": {"layers": [{"units": 0, "activation": {"name": "swish", "beta": -1}},
                                   {"type": "maxout", "units": 2, "pieces": 1, "piece": 2}]}}
    problem = assert_problem(await api.post("/v1/jobs", json=body), 422)
    where = {tuple(error["loc"]): error["msg"] for error in problem["errors"]}
    assert set(where) == {
        ("body", "epochz"), ("body", "epochs"), ("body", "network", "layers", 0, "units"),
        ("body", "network", "layers", 0, "activation", "beta"),
        ("body", "network", "layers", 1, "pieces"), ("body", "network", "layers", 1, "piece"),
    }  # an unknown key no longer hides the others, and no path has pydantic's union tags
    assert "valid keys" in where[("body", "epochz")] and "epochs" in where[("body", "epochz")]
    assert "valid keys: type, units, pieces" in where[("body", "network", "layers", 1, "piece")]


async def test_error_paths_skip_an_aliases_tag_but_keep_a_missing_fields_name(
    api: httpx.AsyncClient,
) -> None:
    dataset = await create_dataset(api)
    layers = [{"units": 3, "activation": {"name": "sigmoid", "foo": 1}},
              {"name": "units", "activation": "softmax"}]  # "units" is both a value and missing
    body = {"dataset_id": dataset["id"], "network": {"layers": layers}}
    problem = assert_problem(await api.post("/v1/jobs", json=body), 422)
    where = {tuple(error["loc"]) for error in problem["errors"]}
    assert ("body", "network", "layers", 0, "activation", "foo") in where  # not …logistic.foo
    assert ("body", "network", "layers", 1, "units") in where
