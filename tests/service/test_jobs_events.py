"""GET /v1/jobs/{id}/events in-process: epochs done first, live epochs, status changes, the end.

No workers run here (workers=0); the test plays the supervisor by committing epochs and the
outcome through the same store functions, and waits on the route's own database polls to know
the stream has seen each step.
"""

from __future__ import annotations

import json
from datetime import timedelta

import anyio
import pytest

from service.jobs import store
from service.models import utcnow
from service.routes import events as events_route
from tests.polling import eventually
from tests.service.api_helpers import client, create_dataset, job_body, make_settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path, api_keys="alice:key-a,bob:key-b")


def _parse(body: str) -> list[tuple[str, dict]]:
    parsed = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in fields:
            parsed.append((fields.get("event", "message"), json.loads(fields["data"])))
    return parsed


def _report(epoch: int) -> dict:
    return {"epoch": epoch, "layers": [], "findings": [],
            "metrics": {"epoch": epoch, "train_loss": 1.0 / epoch, "train_accuracy": 0.5,
                        "val_loss": None, "val_accuracy": None, "learning_rate": 0.1,
                        "seconds": 0.1}}


class _Supervisor:
    """Commits what a supervisor would, through the real store functions."""

    def __init__(self, database) -> None:
        self.database = database

    def claim(self) -> None:
        now = utcnow()
        with self.database.write() as session:
            store.claim_next(session, worker_id="w", now=now,
                             lease_until=now + timedelta(seconds=60), skip_locked=False)

    def epoch(self, job_id: str, epoch: int) -> None:
        now = utcnow()
        with self.database.write() as session:
            store.record_epoch(session, job_id=job_id, worker_id="w", report=_report(epoch),
                               checkpoint=b"c", now=now, lease_until=now + timedelta(seconds=60))

    def succeed(self, job_id: str) -> None:
        with self.database.write() as session:
            store.publish_model(session, job_id=job_id, worker_id="w", model=b"m", now=utcnow(),
                                result={"stop_reason": "max_epochs", "best_epoch": 3})


@pytest.fixture
def polls(monkeypatch):
    """Counts the route's database polls, so the test knows when the stream has looked."""
    seen = {"count": 0}
    original = events_route._read_snapshot

    def counting(*args):
        snapshot = original(*args)
        seen["count"] += 1
        return snapshot

    monkeypatch.setattr(events_route, "_read_snapshot", counting)
    monkeypatch.setattr(events_route, "POLL_SECONDS", 0.01)
    return seen


async def _after_next_poll(polls: dict) -> None:
    target = polls["count"] + 1

    async def polled() -> bool:
        return polls["count"] >= target

    await eventually(polled, timeout=10.0, interval=0.005, message="the stream's next poll")


async def test_stream_sends_done_epochs_then_live_ones_and_ends_after_the_terminal_status(
    running, polls
):
    supervisor = _Supervisor(running.state.database)
    async with client(running, key="key-a") as http:
        dataset = await create_dataset(http)
        job_id = (await http.post("/v1/jobs", json=job_body(dataset["id"]))).json()["id"]
        supervisor.claim()
        supervisor.epoch(job_id, 1)
        result: dict = {}

        async def listen() -> None:
            result["response"] = await http.get(f"/v1/jobs/{job_id}/events")

        async with anyio.create_task_group() as group:
            group.start_soon(listen)
            await _after_next_poll(polls)
            supervisor.epoch(job_id, 2)
            await _after_next_poll(polls)
            supervisor.epoch(job_id, 3)
            supervisor.succeed(job_id)

    response = result["response"]
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    stream = _parse(response.text)
    assert [(name, data.get("epoch")) for name, data in stream if name == "epoch"] == [
        ("epoch", 1), ("epoch", 2), ("epoch", 3)]
    statuses = [data["status"] for name, data in stream if name == "status"]
    assert statuses == ["running", "succeeded"]
    assert stream[-1][0] == "status" and stream[-1][1]["model_id"] is not None
    assert stream[0][0] == "status"  # running first: the epochs happened while it ran
    assert stream[1] == ("epoch", {"epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5,
                                   "val_loss": None, "val_accuracy": None,
                                   "learning_rate": 0.1, "seconds": 0.1})


async def test_a_job_that_ran_and_finished_between_two_polls_still_reports_running(
    running, polls
):
    supervisor = _Supervisor(running.state.database)
    async with client(running, key="key-a") as http:
        dataset = await create_dataset(http)
        job_id = (await http.post("/v1/jobs", json=job_body(dataset["id"]))).json()["id"]
        result: dict = {}

        async def listen() -> None:
            result["response"] = await http.get(f"/v1/jobs/{job_id}/events")

        async with anyio.create_task_group() as group:
            group.start_soon(listen)
            await _after_next_poll(polls)  # the stream has seen it queued
            supervisor.claim()
            supervisor.epoch(job_id, 1)
            supervisor.epoch(job_id, 2)
            supervisor.succeed(job_id)  # all before the stream looks again

    stream = _parse(result["response"].text)
    assert [(name, data.get("status"), data.get("epoch")) for name, data in stream] == [
        ("status", "queued", 0), ("status", "running", 0), ("epoch", None, 1),
        ("epoch", None, 2), ("status", "succeeded", 2)]
    while_running = stream[1][1]
    assert while_running["started_at"] is not None and while_running["finished_at"] is None
    assert while_running["model_id"] is None and while_running["metrics"] is None


async def _a_job_that_succeeded_after_three_epochs(running, http) -> str:
    supervisor = _Supervisor(running.state.database)
    dataset = await create_dataset(http)
    job_id = (await http.post("/v1/jobs", json=job_body(dataset["id"]))).json()["id"]
    supervisor.claim()
    for epoch in (1, 2, 3):
        supervisor.epoch(job_id, epoch)
    supervisor.succeed(job_id)
    return str(job_id)


async def test_a_finished_job_streams_its_history_and_one_status(running):
    async with client(running, key="key-a") as http:
        job_id = await _a_job_that_succeeded_after_three_epochs(running, http)
        full = _parse((await http.get(f"/v1/jobs/{job_id}/events")).text)
        resumed = _parse((await http.get(f"/v1/jobs/{job_id}/events",
                                         headers={"Last-Event-ID": "2"})).text)

    assert [n for n, _ in full] == ["epoch", "epoch", "epoch", "status"]
    assert [(n, d.get("epoch")) for n, d in resumed if n == "epoch"] == [("epoch", 3)]
    assert resumed[-1][1]["status"] == "succeeded"


@pytest.mark.parametrize(("last_event_id", "epochs_sent"), [
    (b"abc", [1, 2, 3]),            # not a number: from the start
    (b"\xb2", [1, 2, 3]),           # latin-1 "²": str.isdigit() says yes, int() says no
    (b"9223372036854775808", []),   # beyond SQLite's integers: everything was seen
])  # fmt: skip
async def test_a_last_event_id_that_is_no_epoch_never_breaks_the_stream(
    running, last_event_id: bytes, epochs_sent: list[int]
):
    async with client(running, key="key-a") as http:
        job_id = await _a_job_that_succeeded_after_three_epochs(running, http)
        response = await http.get(f"/v1/jobs/{job_id}/events",
                                  headers={"Last-Event-ID": last_event_id})
    assert response.status_code == 200
    stream = _parse(response.text)
    assert [d["epoch"] for n, d in stream if n == "epoch"] == epochs_sent
    assert stream[-1][0] == "status" and stream[-1][1]["status"] == "succeeded"
    async with client(running, key="key-a") as http:  # longer than any epoch number: refused
        too_long = await http.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "1" * 40})
    assert too_long.status_code == 422 and "last-event-id" in too_long.text.lower()


async def test_a_cancelled_queued_job_streams_its_terminal_status(running):
    async with client(running, key="key-a") as http:
        dataset = await create_dataset(http)
        job_id = (await http.post("/v1/jobs", json=job_body(dataset["id"]))).json()["id"]
        assert (await http.post(f"/v1/jobs/{job_id}/cancel")).status_code == 202
        stream = _parse((await http.get(f"/v1/jobs/{job_id}/events")).text)
    assert stream == [("status", stream[0][1])] and stream[0][1]["status"] == "cancelled"


async def test_events_of_an_unknown_or_foreign_job_are_404_problems(running):
    async with (client(running, key="key-a") as alice, client(running, key="key-b") as bob,
                client(running) as anonymous_client):
        dataset = await create_dataset(alice)
        job_id = (await alice.post("/v1/jobs", json=job_body(dataset["id"]))).json()["id"]
        foreign = await bob.get(f"/v1/jobs/{job_id}/events")
        unknown = await alice.get("/v1/jobs/0123456789abcdef/events")
        anonymous = await anonymous_client.get(f"/v1/jobs/{job_id}/events")
    for response in (foreign, unknown):
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")
    assert anonymous.status_code == 401


async def test_openapi_documents_the_event_stream(running):
    async with client(running, key="key-a") as http:
        document = (await http.get("/openapi.json")).json()
    operation = document["paths"]["/v1/jobs/{job_id}/events"]["get"]
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    assert {"404", "401"} <= set(operation["responses"])
