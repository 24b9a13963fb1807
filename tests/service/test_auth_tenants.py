"""API keys → owners: 401 without a valid key, and one owner never sees another owner's objects."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

from service.auth import resolve_owner
from service.settings import Settings
from tests.service.api_helpers import (
    api_client,
    assert_problem,
    client,
    create_dataset,
    job_body,
    make_settings,
)

pytestmark = pytest.mark.anyio
ALICE, BOB = "key-alice-0123456789", "key-bob-0123456789"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, api_keys=f"alice:{ALICE},bob:{BOB}")


async def test_missing_or_wrong_key_is_401_with_bearer_challenge(running: FastAPI) -> None:
    for key in (None, "not-a-key", ALICE + "x"):
        async with client(running, key=key) as http:
            response = await http.get("/v1/datasets")
        problem = assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
        assert ALICE not in str(problem) and BOB not in str(problem)


async def test_health_and_readiness_are_public_metrics_are_not(running: FastAPI) -> None:
    async with client(running) as anonymous:
        assert (await anonymous.get("/healthz")).status_code == 200
        assert (await anonymous.get("/readyz")).status_code == 200
        assert_problem(await anonymous.get("/metrics"), 401)
    async with client(running, key=BOB) as bob:
        assert (await bob.get("/metrics")).status_code == 200


async def test_owners_cannot_see_each_others_objects(running: FastAPI) -> None:
    async with client(running, key=ALICE) as alice, client(running, key=BOB) as bob:
        dataset = await create_dataset(alice)
        job = (await alice.post("/v1/jobs", json=job_body(dataset["id"]))).json()
        for path in (
            f"/v1/datasets/{dataset['id']}",
            f"/v1/jobs/{job['id']}",
            f"/v1/jobs/{job['id']}/metrics",
        ):
            assert_problem(await bob.get(path), 404)
            assert (await alice.get(path)).status_code == 200
        for path in ("/v1/datasets", "/v1/jobs"):
            assert (await bob.get(path)).json()["total"] == 0
            assert (await alice.get(path)).json()["total"] == 1
        assert_problem(await bob.post(f"/v1/jobs/{job['id']}/cancel"), 404)
        assert_problem(await bob.delete(f"/v1/datasets/{dataset['id']}"), 404)
        assert_problem(await bob.post("/v1/jobs", json=job_body(dataset["id"])), 404)
        assert (await alice.get(f"/v1/jobs/{job['id']}")).json()["status"] == "queued"


async def test_idempotency_keys_are_scoped_to_the_owner(running: FastAPI) -> None:
    async with client(running, key=ALICE) as alice, client(running, key=BOB) as bob:
        alice_dataset = await create_dataset(alice)
        bob_dataset = await create_dataset(bob)
        headers = {"Idempotency-Key": "same-key"}
        first = await alice.post("/v1/jobs", json=job_body(alice_dataset["id"]), headers=headers)
        second = await bob.post("/v1/jobs", json=job_body(bob_dataset["id"]), headers=headers)
        assert first.status_code == second.status_code == 202
        assert first.json()["id"] != second.json()["id"]


def test_resolve_owner_matches_exactly_one_key() -> None:
    owners = {ALICE: "alice", BOB: "bob"}
    assert resolve_owner(owners, ALICE) == "alice"
    assert resolve_owner(owners, BOB) == "bob"
    assert resolve_owner(owners, ALICE[:-1]) is None
    assert resolve_owner(owners, "") is None
    assert resolve_owner(owners, None) is None


async def test_without_keys_everyone_is_public(tmp_path: Path) -> None:
    async with api_client(make_settings(tmp_path)) as http:
        assert (await http.get("/v1/datasets")).status_code == 200
        dataset = await create_dataset(http)
        assert dataset["id"]
