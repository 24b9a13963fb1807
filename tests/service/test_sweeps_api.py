"""/v1/sweeps in-process: a queued job per point, all-or-nothing checks, ranking by best metric."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.app import create_app
from service.models import EpochRecord
from service.settings import Settings
from tests.service.api_helpers import (
    assert_problem,
    client,
    create_dataset,
    job_body,
    job_count,
    make_settings,
    upload_json,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, max_queued_jobs_per_owner=6)


def record_epochs(app: FastAPI, job_id: str, values: list[float | None], metric: str) -> None:
    """Write epoch rows as the supervisor would, with `metric` taking `values` epoch by epoch."""
    with app.state.database.write() as session:
        for epoch, value in enumerate(values, start=1):
            session.add(
                EpochRecord(
                    job_id=job_id,
                    epoch=epoch,
                    train_loss=1.0,
                    learning_rate=0.1,
                    seconds=0.01,
                    layers=[],
                    findings=[],
                    **{metric: value},
                )
            )


async def test_grid_sweep_queues_one_job_per_combination(api: httpx.AsyncClient) -> None:
    dataset = await create_dataset(api)
    grid = {"optimizer.learning_rate": [0.1, 0.01], "batch_size": [8, 32]}
    response = await api.post("/v1/sweeps", json={"base": job_body(dataset["id"]), "grid": grid})
    assert response.status_code == 202, response.text
    sweep = response.json()
    assert response.headers["location"] == f"/v1/sweeps/{sweep['id']}"
    assert sweep["metric"] == "val_accuracy" and sweep["status_counts"] == {"queued": 4}
    overrides = [job["overrides"] for job in sweep["jobs"]]
    assert overrides == [
        {"optimizer.learning_rate": lr, "batch_size": bs} for lr in (0.1, 0.01) for bs in (8, 32)
    ]
    for job in sweep["jobs"]:
        stored = (await api.get(f"/v1/jobs/{job['id']}")).json()
        assert stored["sweep_id"] == sweep["id"] and stored["status"] == "queued"
        spec, point = stored["spec"], job["overrides"]
        assert spec["optimizer"]["learning_rate"] == point["optimizer.learning_rate"]
        assert spec["batch_size"] == point["batch_size"]
    assert (await api.get(f"/v1/sweeps/{sweep['id']}")).json() == sweep


async def test_points_override_layer_widths_and_activations(api: httpx.AsyncClient) -> None:
    dataset = await create_dataset(api)
    points = [
        {"network.layers.0.units": 4, "network.layers.0.activation": "relu"},
        {"network.layers.0.units": 16, "l2": 0.001, "seed": 3},
    ]
    sweep = (
        await api.post("/v1/sweeps", json={"base": job_body(dataset["id"]), "points": points})
    ).json()
    specs = [(await api.get(f"/v1/jobs/{job['id']}")).json()["spec"] for job in sweep["jobs"]]
    assert [s["network"]["layers"][0]["units"] for s in specs] == [4, 16]
    assert specs[0]["network"]["layers"][0]["activation"] == {"name": "relu"}
    assert (specs[1]["l2"], specs[1]["seed"]) == (0.001, 3)
    assert specs[0]["seed"] == 0  # from the base


async def test_points_share_one_drawn_seed_unless_the_seed_is_swept(api: httpx.AsyncClient) -> None:
    dataset = await create_dataset(api)
    base = job_body(dataset["id"])
    del base["seed"]
    sweep = (
        await api.post("/v1/sweeps", json={"base": base, "grid": {"l2": [0.0, 0.1, 0.2]}})
    ).json()
    seeds = {
        (await api.get(f"/v1/jobs/{job['id']}")).json()["spec"]["seed"] for job in sweep["jobs"]
    }
    assert len(seeds) == 1 and sweep["base"]["seed"] in seeds
    swept = (await api.post("/v1/sweeps", json={"base": base, "grid": {"seed": [4, 5]}})).json()
    assert [job["overrides"]["seed"] for job in swept["jobs"]] == [4, 5]


async def test_an_invalid_point_fails_the_sweep_naming_it_and_creates_nothing(
    api: httpx.AsyncClient, app: FastAPI
) -> None:
    dataset = await create_dataset(api)
    body = {"base": job_body(dataset["id"]), "grid": {"optimizer.learning_rate": [0.1, -1.0]}}
    problem = assert_problem(await api.post("/v1/sweeps", json=body), 422, "learning_rate")
    assert problem["errors"][0]["loc"][:2] == ["body", "grid"]
    assert job_count(app.state.database) == 0


async def test_a_point_that_does_not_fit_the_data_is_422_at_that_point(
    api: httpx.AsyncClient, app: FastAPI
) -> None:
    dataset = await create_dataset(api)  # three classes
    points = [{"l2": 0.0}, {"network.layers.1.units": 5}]
    body = {"base": job_body(dataset["id"]), "points": points}
    problem = assert_problem(await api.post("/v1/sweeps", json=body), 422, "point 2 of 2")
    assert problem["errors"][0]["loc"][:3] == ["body", "points", 1]
    assert job_count(app.state.database) == 0


async def test_a_sweep_beyond_the_queue_limit_is_refused(
    api: httpx.AsyncClient, app: FastAPI
) -> None:
    dataset = await create_dataset(api)
    base = job_body(dataset["id"])
    too_big = {"base": base, "grid": {"seed": list(range(7))}}  # the limit is 6 queued jobs
    assert_problem(await api.post("/v1/sweeps", json=too_big), 422, "limit is 6")
    assert (await api.post("/v1/jobs", json=base)).status_code == 202
    overflowing = {"base": base, "grid": {"seed": list(range(6))}}  # 1 + 6 > 6
    response = await api.post("/v1/sweeps", json=overflowing)
    assert_problem(response, 429)
    assert int(response.headers["retry-after"]) > 0
    assert job_count(app.state.database) == 1


async def test_sweep_on_an_unknown_dataset_is_404(api: httpx.AsyncClient) -> None:
    body = {"base": job_body("feedbeef"), "points": [{"seed": 1}]}
    assert_problem(await api.post("/v1/sweeps", json=body), 404, "feedbeef")


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("with_base", "rest"),
    [
        (False, {"points": [{"seed": 1}]}),
        (True, {"grid": {"dataset_id": ["a", "b"]}}),  # a sweep trains one dataset
        (True, {"grid": {"seed": [1]}, "points": [{"seed": 2}]}),
        (True, {}),
        (True, {"grid": {"seed": []}}),
        (True, {"points": []}),
        (True, {"points": [{"network.layers.9.units": 3}]}),  # no such layer
        (True, {"points": [{"optimizer..name": "adam"}]}),
        (True, {"grid": {"seed": [1]}, "extra": True}),
        # NaN/Infinity must not reach the database, even where a later key hides them
        (True, {"grid": {"optimizer.momentum": [float("inf"), float("nan")],
                         "optimizer": [{"name": "adam"}]}}),
        (True, {"points": [{"l2": float("nan")}]}),
        (True, {"grid": {"network.layers.\u00b2.units": [8]}}),  # "²": isdigit(), not an int
        (True, {"grid": {"network.layers.\u0663.units": [8]}}),  # Arabic-Indic 3: not ASCII
        # every point copies its values: one big value × many seeds would multiply memory
        (True, {"grid": {"optimizer.junk": ["x" * 70_000], "seed": list(range(3))}}),
        (True, {"points": [{"optimizer.junk": list(range(20_000))}]}),
        (True, {"points": [{"l2": nested(200)}]}),  # deeper than any job body: refused, no 500
        (True, {"grid": {"network.layers.0.units": ["y" * 20_000]}}),  # named, not echoed
    ],
)
async def test_malformed_sweeps_are_422_and_create_nothing(
    api: httpx.AsyncClient, app: FastAPI, with_base: bool, rest: dict[str, Any]
) -> None:
    dataset = await create_dataset(api)
    body = {"base": job_body(dataset["id"]), **rest} if with_base else rest
    text = json.dumps(body)  # allow_nan: the literal NaN / Infinity that Python's parser accepts
    response = await api.post("/v1/sweeps", content=text,
                              headers={"content-type": "application/json"})
    problem = assert_problem(response, 422)
    assert len(response.content) < 10_000, problem["detail"][:200]  # no value echoed in full
    assert job_count(app.state.database) == 0


async def test_get_ranks_by_best_validation_accuracy_jobs_without_it_last(
    api: httpx.AsyncClient, app: FastAPI
) -> None:
    dataset = await create_dataset(api)
    body = {
        "base": job_body(dataset["id"], validation={"split": 0.2}),
        "grid": {"seed": [1, 2, 3, 4]},
    }
    sweep = (await api.post("/v1/sweeps", json=body)).json()
    by_seed = {job["overrides"]["seed"]: job["id"] for job in sweep["jobs"]}
    record_epochs(app, by_seed[1], [0.5, 0.9, 0.8], "val_accuracy")
    record_epochs(app, by_seed[2], [0.95, 0.7], "val_accuracy")
    record_epochs(app, by_seed[4], [None], "val_accuracy")
    ranked = (await api.get(f"/v1/sweeps/{sweep['id']}")).json()["jobs"]
    assert [job["id"] for job in ranked] == [by_seed[2], by_seed[1], by_seed[3], by_seed[4]]
    assert [(job["best"], job["best_epoch"]) for job in ranked] == [
        (0.95, 1),
        (0.9, 2),
        (None, None),
        (None, None),
    ]


async def test_regression_sweeps_rank_by_lowest_validation_loss(
    api: httpx.AsyncClient, app: FastAPI
) -> None:
    rows = [[float(i), float(i % 3)] for i in range(40)]
    dataset = (
        await upload_json(api, {"X": rows, "y": [0.5 * i for i in range(40)], "task": "regression"})
    ).json()
    base = job_body(dataset["id"], validation={"split": 0.25}, loss="mse")
    base["network"]["layers"][1] = {"units": 1, "activation": "identity"}
    sweep = (await api.post("/v1/sweeps", json={"base": base, "grid": {"l2": [0.0, 0.1]}})).json()
    assert sweep["metric"] == "val_loss"
    first, second = (job["id"] for job in sweep["jobs"])
    record_epochs(app, first, [3.0, 2.0], "val_loss")
    record_epochs(app, second, [1.5, 4.0], "val_loss")
    ranked = (await api.get(f"/v1/sweeps/{sweep['id']}")).json()["jobs"]
    assert [(job["id"], job["best"], job["best_epoch"]) for job in ranked] == [
        (second, 1.5, 1),
        (first, 2.0, 2),
    ]


async def test_another_owner_cannot_see_a_sweep(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, api_keys="alice:key-a,bob:key-b")
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        client(app, key="key-a") as alice,
        client(app, key="key-b") as bob,
    ):
        dataset = await create_dataset(alice)
        body = {"base": job_body(dataset["id"]), "points": [{"seed": 1}]}
        sweep = (await alice.post("/v1/sweeps", json=body)).json()
        assert_problem(await bob.get(f"/v1/sweeps/{sweep['id']}"), 404)
        assert_problem(await bob.post("/v1/sweeps", json=body), 404, dataset["id"])
        assert (await alice.get(f"/v1/sweeps/{sweep['id']}")).status_code == 200
