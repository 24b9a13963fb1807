"""Count-then-write races that SQLite's single writer rules out but PostgreSQL's READ COMMITTED
allows. Each test holds one transaction open at the racy point, starts the other, waits (polling
pg_stat_activity, no sleeps) until the second is blocked on a lock, then lets the first commit."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from service import crud
from service.db import Database
from service.job_submission import create_checked_job
from service.migrate import upgrade_to_head
from service.models import DatasetBlob, Job
from service.problems import TooManyRequests
from service.schemas import JobCreate
from service.settings import Settings
from tests.polling import wait_until

META = {"task": "classification", "n_samples": 40, "n_features": 2, "n_targets": 1,
        "feature_names": ["a", "b"], "target_name": "y", "classes": [0, 1]}


@pytest.fixture
def database(postgres_url: str, tmp_path: Path) -> Iterator[Database]:
    db = Database(Settings(data_dir=tmp_path, database_url=postgres_url, workers=0,
                           max_queued_jobs_per_owner=1))
    upgrade_to_head(db.engine)
    yield db
    db.dispose()


def _someone_waits_on_a_lock(database: Database) -> bool:
    with database.read() as session:
        waiting = session.scalar(text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"))
    return bool(waiting)


def _race(database: Database, first: Callable[[Any], None], second: Callable[[], None]) -> None:
    """`first(session)` runs in a transaction that stays open until `second()` (in another thread)
    waits on a lock; then both finish. Re-raises whatever `second` raised."""
    flushed, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold() -> None:
        with database.write() as session:
            first(session)
            session.flush()
            flushed.set()
            release.wait(30)

    def run_second() -> None:
        try:
            second()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    holder = threading.Thread(target=hold)
    holder.start()
    assert flushed.wait(30)
    racer = threading.Thread(target=run_second)
    racer.start()
    try:
        wait_until(lambda: _someone_waits_on_a_lock(database), timeout=30,
                   message="the second transaction to wait on the first's lock")
    finally:
        release.set()
        holder.join(30)
        racer.join(30)
    if errors:
        raise errors[0]


def test_deleting_a_dataset_while_the_same_bytes_are_uploaded_keeps_the_blob(
    database: Database,
) -> None:
    sha = "c" * 64
    with database.write() as session:
        alice = crud.store_dataset(session, owner="alice", name="a", arrays=b"npz", sha256=sha,
                                   meta=META).id

    def upload(session: Any) -> None:  # bob's identical upload, not committed yet
        crud.store_dataset(session, owner="bob", name="b", arrays=b"npz", sha256=sha, meta=META)

    def delete() -> None:
        with database.write() as session:
            assert crud.delete_dataset_unless_used(session, owner="alice", dataset_id=alice) == 0

    _race(database, upload, delete)  # the DELETE used to fail on the foreign key: a 500
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(DatasetBlob)) == 1


def test_two_submissions_cannot_both_take_the_last_queue_slot(database: Database) -> None:
    with database.write() as session:
        ids = [crud.store_dataset(session, owner="alice", name=n, arrays=n.encode(),
                                  sha256=n * 64, meta=META).id for n in "de"]

    def body(dataset_id: str) -> JobCreate:
        return JobCreate.model_validate({
            "dataset_id": dataset_id, "epochs": 1,
            "network": {"layers": [{"units": 2, "activation": "softmax"}]}})

    def submit_first(session: Any) -> None:
        create_checked_job(session, database.settings, owner="alice", body=body(ids[0]))

    def submit_second() -> None:
        with database.write() as session:
            create_checked_job(session, database.settings, owner="alice", body=body(ids[1]))

    with pytest.raises(TooManyRequests):  # both were admitted before: two jobs past a limit of 1
        _race(database, submit_first, submit_second)
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 1
