"""The supervisor's statements: exclusive claims, leases, resume bookkeeping, atomic publication."""

from __future__ import annotations

import json
from datetime import timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from service.db import Database
from service.jobs import store
from service.models import Checkpoint, EpochRecord, Job, Model, ModelWeights, utcnow
from service.settings import Settings
from tests.service.jobs_fakes import add_dataset, add_job, get_job, make_database


def _claim(database: Database, worker_id: str = "w1", lease_seconds: float = 30.0) -> str | None:
    now = utcnow()
    with database.write() as session:
        return store.claim_next(session, worker_id=worker_id, now=now,
                                lease_until=now + timedelta(seconds=lease_seconds),
                                skip_locked=not database.is_sqlite)


def _claim_all(data_dir: str, worker_id: str, barrier: Any, results: Any) -> None:
    """Runs in a separate process: one claim, wait for the other process to have made one too
    (so both are running when the race starts), then claim until the queue is empty."""
    database = Database(Settings(data_dir=Path(data_dir), workers=0))
    barrier.wait(timeout=60)
    claimed = [_claim(database, worker_id)]
    barrier.wait(timeout=60)
    while (job_id := _claim(database, worker_id)) is not None:
        claimed.append(job_id)
    database.dispose()
    results.put((worker_id, claimed))


def _report(epoch: int) -> dict:
    return {"epoch": epoch, "layers": [{"layer": 1, "grad_norm_w": 0.5}], "findings": [],
            "metrics": {"epoch": epoch, "train_loss": 1.0 / epoch, "train_accuracy": None,
                        "val_loss": None, "val_accuracy": None, "learning_rate": 0.1,
                        "seconds": 0.2}}


def _record(database: Database, job_id: str, epoch: int, worker_id: str = "w1") -> bool:
    now = utcnow()
    with database.write() as session:
        return store.record_epoch(session, job_id=job_id, worker_id=worker_id,
                                  report=_report(epoch), checkpoint=f"ckpt{epoch}".encode(),
                                  now=now, lease_until=now + timedelta(seconds=30))


@pytest.fixture
def database(tmp_path):
    database = make_database(tmp_path)
    yield database
    database.dispose()


def test_claim_takes_the_oldest_queued_job_and_starts_a_lease(database):
    dataset = add_dataset(database)
    first, second = add_job(database, dataset), add_job(database, dataset)

    assert _claim(database) == first
    job = get_job(database, first)
    assert (job.status, job.worker_id, job.attempt) == ("running", "w1", 1)
    assert job.started_at is not None and job.lease_expires_at is not None
    assert get_job(database, second).status == "queued"


def test_claim_returns_none_when_nothing_is_queued(database):
    dataset = add_dataset(database)
    add_job(database, dataset, status="succeeded")
    assert _claim(database) is None


def test_any_queued_tells_whether_claim_next_has_a_job_to_take(database):
    def any_queued() -> bool:
        with database.read() as session:
            return store.any_queued(session)

    dataset = add_dataset(database)
    assert not any_queued()
    add_job(database, dataset, status="succeeded")
    add_job(database, dataset, status="running", worker_id="w0", attempt=1)
    assert not any_queued()
    add_job(database, dataset)
    assert any_queued()
    assert _claim(database) is not None
    assert not any_queued()


@pytest.mark.slow
def test_two_processes_racing_claim_each_of_200_jobs_exactly_once(tmp_path, database):
    dataset = add_dataset(database)
    with database.write() as session:
        session.add_all(Job(owner="public", dataset_id=dataset, spec={}, epochs=1)
                        for _ in range(200))
    context = get_context("spawn")
    barrier, queue = context.Barrier(2), context.Queue()
    processes = [context.Process(target=_claim_all, args=(str(tmp_path), worker, barrier, queue))
                 for worker in ("a", "b")]
    for process in processes:
        process.start()
    try:
        results = dict(queue.get(timeout=120) for _ in processes)
    finally:
        for process in processes:
            process.join(timeout=60)
            process.kill()

    claimed = results["a"] + results["b"]
    assert None not in claimed  # each process's first claim, made while the other waited, won
    assert len(claimed) == 200 and len(set(claimed)) == 200
    with database.read() as session:
        jobs = session.execute(select(Job)).scalars().all()
    assert all(job.status == "running" and job.attempt == 1 for job in jobs)
    assert {job.id for job in jobs if job.worker_id == "a"} == set(results["a"])


def test_record_epoch_commits_metrics_diagnostics_checkpoint_and_progress(database):
    job_id = add_job(database, add_dataset(database))
    _claim(database)

    assert _record(database, job_id, 1) and _record(database, job_id, 2)

    with database.read() as session:
        rows = session.execute(select(EpochRecord).order_by(EpochRecord.epoch)).scalars().all()
        checkpoint = session.get_one(Checkpoint, job_id)
    assert [row.epoch for row in rows] == [1, 2]
    assert rows[1].train_loss == 0.5 and rows[1].layers == [{"layer": 1, "grad_norm_w": 0.5}]
    assert (checkpoint.epoch, checkpoint.state) == (2, b"ckpt2")
    job = get_job(database, job_id)
    assert job.epoch == 2 and job.metrics["train_loss"] == 0.5


def test_a_partial_report_replaces_the_checkpoint_and_renews_the_lease_only(database):
    job_id = add_job(database, add_dataset(database))
    _claim(database)
    _record(database, job_id, 1)
    now = utcnow()
    with database.write() as session:  # inside epoch 2: one whole epoch before it
        assert store.record_epoch(
            session, job_id=job_id, worker_id="w1", report={"epoch": 1, "partial": True},
            checkpoint=b"inside-2", now=now, lease_until=now + timedelta(seconds=99))
    with database.read() as session:
        rows = session.execute(select(EpochRecord)).scalars().all()
        checkpoint = session.get_one(Checkpoint, job_id)
    assert [row.epoch for row in rows] == [1]
    assert (checkpoint.epoch, checkpoint.state) == (1, b"inside-2")
    job = get_job(database, job_id)
    assert job.epoch == 1 and job.metrics == _report(1)["metrics"]
    assert job.lease_expires_at is not None
    assert job.lease_expires_at.replace(tzinfo=None) > (now + timedelta(seconds=90)).replace(
        tzinfo=None)
    with database.write() as session:  # not ours: nothing changes
        assert not store.record_epoch(
            session, job_id=job_id, worker_id="intruder", report={"epoch": 1, "partial": True},
            checkpoint=b"theirs", now=now, lease_until=now)
    with database.read() as session:
        assert session.get_one(Checkpoint, job_id).state == b"inside-2"


def test_record_epoch_refuses_a_job_leased_by_someone_else(database):
    job_id = add_job(database, add_dataset(database))
    _claim(database, worker_id="owner")
    assert not _record(database, job_id, 1, worker_id="intruder")
    with database.read() as session:
        assert session.execute(select(EpochRecord)).first() is None


def test_reclaim_drops_epochs_after_the_checkpoint_and_resets_progress(database):
    job_id = add_job(database, add_dataset(database))
    _claim(database)
    _record(database, job_id, 1)
    _record(database, job_id, 2)
    with database.write() as session:  # epoch 3 committed without a checkpoint, then lost
        store.record_epoch(session, job_id=job_id, worker_id="w1", report=_report(3),
                           checkpoint=None, now=utcnow(), lease_until=utcnow())
        store.settle_lost_job(session, job_id=job_id, worker_id="w1", max_attempts=3,
                              detail="test", now=utcnow())

    assert _claim(database) == job_id
    with database.read() as session:
        epochs = session.execute(select(EpochRecord.epoch)).scalars().all()
    job = get_job(database, job_id)
    assert sorted(epochs) == [1, 2]
    assert (job.epoch, job.metrics["epoch"], job.attempt) == (2, 2, 2)


@pytest.mark.parametrize(
    ("attempt", "cancel_requested", "expected"),
    [(1, False, "queued"), (2, False, "queued"), (3, False, "failed"), (1, True, "cancelled")],
)
def test_a_lost_job_resumes_until_attempts_run_out(database, attempt, cancel_requested, expected):
    job_id = add_job(database, add_dataset(database), status="running", worker_id="gone",
                     attempt=attempt, cancel_requested=cancel_requested,
                     lease_expires_at=utcnow() - timedelta(seconds=1))
    with database.write() as session:
        status = store.settle_lost_job(session, job_id=job_id, worker_id=None, max_attempts=3,
                                       detail="lease expired", now=utcnow(), lease_expired=True)
    job = get_job(database, job_id)
    assert status == job.status == expected
    assert job.lease_expires_at is None
    if expected == "failed":
        assert job.failure_reason == "worker_lost" and "lost 3 times" in job.error
    if expected == "queued":
        assert job.worker_id is None and job.finished_at is None


def test_a_lease_that_was_renewed_is_not_settled(database):
    job_id = add_job(database, add_dataset(database), status="running", worker_id="alive",
                     attempt=1, lease_expires_at=utcnow() + timedelta(seconds=30))
    with database.write() as session:
        assert store.expired_running_jobs(session, now=utcnow(), exclude=set()) == []
        status = store.settle_lost_job(session, job_id=job_id, worker_id=None, max_attempts=3,
                                       detail="test", now=utcnow(), lease_expired=True)
    assert status is None and get_job(database, job_id).status == "running"


def test_expired_leases_are_found_except_our_own_running_jobs(database):
    dataset = add_dataset(database)
    past = utcnow() - timedelta(seconds=5)
    stale = add_job(database, dataset, status="running", worker_id="x", lease_expires_at=past)
    ours = add_job(database, dataset, status="running", worker_id="me", lease_expires_at=past)
    with database.read() as session:
        assert store.expired_running_jobs(session, now=utcnow(), exclude={ours}) == [stale]


def test_publish_model_writes_model_weights_and_success_in_one_transaction(database):
    job_id = add_job(database, add_dataset(database))
    _claim(database)
    result = {"status": "succeeded", "stop_reason": "max_epochs", "best_epoch": 3,
              "metrics": {"epoch": 3, "train_loss": 0.1}, "findings": [{"code": "dead_units"}]}
    with database.write() as session:
        model_id = store.publish_model(session, job_id=job_id, worker_id="w1", result=result,
                                       model=b"npz-bytes", now=utcnow())

    with database.read() as session:
        model = session.get_one(Model, model_id)
        weights = session.get_one(ModelWeights, model_id)
    job = get_job(database, job_id)
    assert (job.status, job.stop_reason, job.finished_at is not None) == (
        "succeeded", "max_epochs", True)
    assert weights.data == b"npz-bytes"
    assert (model.job_id, model.task, model.loss, model.n_features) == (
        job_id, "classification", "cross_entropy", 3)
    assert model.parameter_count == (3 + 1) * 4 + (4 + 1) * 2
    assert model.classes == [0, 1] and model.best_epoch == 3
    assert model.findings == [{"code": "dead_units"}]


def test_a_cancel_requested_before_the_end_publishes_nothing(database):
    job_id = add_job(database, add_dataset(database))
    _claim(database)
    with database.write() as session:
        session.get_one(Job, job_id).cancel_requested = True
    with database.write() as session:
        model_id = store.publish_model(session, job_id=job_id, worker_id="w1",
                                       result={"status": "succeeded"}, model=b"x", now=utcnow())
    assert model_id is None
    assert get_job(database, job_id).status == "cancelled"
    with database.read() as session:
        assert session.execute(select(Model)).first() is None


def test_release_requeues_without_counting_the_attempt(database):
    job_id = add_job(database, add_dataset(database))
    _claim(database)
    with database.write() as session:
        store.release_jobs(session, worker_id="w1", job_ids={job_id}, now=utcnow())
    job = get_job(database, job_id)
    assert (job.status, job.attempt, job.worker_id) == ("queued", 0, None)


def test_a_claim_skips_a_queued_job_the_claimant_still_runs_a_copy_of(database):
    dataset = add_dataset(database)
    requeued, other = add_job(database, dataset), add_job(database, dataset)
    now = utcnow()
    with database.write() as session:
        claimed = store.claim_next(session, worker_id="w1", now=now, skip_locked=False,
                                   lease_until=now + timedelta(seconds=30), exclude={requeued})
    assert claimed == other  # the older job waits until w1's copy of it is abandoned
    with database.write() as session:
        again = store.claim_next(session, worker_id="w1", now=now, skip_locked=False,
                                 lease_until=now + timedelta(seconds=30))
    assert again == requeued


def test_release_keeps_the_attempt_for_an_executor_that_cannot_rerun_it(database):
    job_id = add_job(database, add_dataset(database))
    _claim(database)
    with database.write() as session:
        store.release_jobs(session, worker_id="w1", job_ids={job_id}, now=utcnow(),
                           refund_attempt=False)
    assert (get_job(database, job_id).status, get_job(database, job_id).attempt) == ("queued", 1)
    _claim(database)
    assert get_job(database, job_id).attempt == 2  # the rerun gets a fresh attempt number


def _checkpoints(database: Database) -> list[str]:
    with database.read() as session:
        return sorted(session.execute(select(Checkpoint.job_id)).scalars())


def test_a_finished_job_keeps_no_checkpoint_and_a_requeued_one_does(database):
    dataset = add_dataset(database)
    done, failed, cancelled, requeued = (add_job(database, dataset) for _ in range(4))
    for job_id in (done, failed, cancelled, requeued):
        _claim(database)
        assert _record(database, job_id, 1)
    assert _checkpoints(database) == sorted([done, failed, cancelled, requeued])
    with database.write() as session:
        store.publish_model(session, job_id=done, worker_id="w1", model=b"m", now=utcnow(),
                            result={"stop_reason": "max_epochs"})
        store.finish_job(session, job_id=failed, worker_id="w1", status="failed", now=utcnow())
        session.get_one(Job, cancelled).cancel_requested = True
    with database.write() as session:
        store.release_jobs(session, worker_id="w1", job_ids={cancelled, requeued}, now=utcnow())
    assert _checkpoints(database) == [requeued]  # it resumes from it; the others never will


def test_release_ends_a_job_whose_cancel_was_requested_cancelled(database):
    dataset = add_dataset(database)
    asked, other = add_job(database, dataset), add_job(database, dataset)
    _claim(database)
    _claim(database)
    with database.write() as session:
        session.get_one(Job, asked).cancel_requested = True
    with database.write() as session:
        store.release_jobs(session, worker_id="w1", job_ids={asked, other}, now=utcnow())
    cancelled, requeued = get_job(database, asked), get_job(database, other)
    assert (cancelled.status, cancelled.stop_reason) == ("cancelled", "cancelled")
    assert cancelled.finished_at is not None
    assert (requeued.status, requeued.worker_id) == ("queued", None)
    assert _claim(database) == other  # nothing cancelled is claimed again
    assert _claim(database) is None


def test_payload_carries_training_fields_datasets_and_the_checkpoint(database):
    dataset = add_dataset(database)
    job_id = add_job(database, dataset, epochs=4)
    _claim(database)
    _record(database, job_id, 1)
    with database.read() as session:
        payload = store.job_payload(session, job_id)
        sha = store.dataset_bytes(session, payload.datasets["train"])
    assert payload.spec["epochs"] == 4 and "dataset_id" not in payload.spec
    assert (payload.task, payload.n_classes, payload.attempt) == ("classification", 2, 1)
    assert payload.resume_from == b"ckpt1"
    assert payload.metadata["classes"] == [0, 1]
    assert json.loads(json.dumps(payload.header()))["job_id"] == job_id
    assert sha.startswith(b"PK")
