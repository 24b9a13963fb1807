"""The supervisor with real worker processes and pipes, running a stand-in task (jobs_fakes).

Each test starts a JobSupervisor over a fresh SQLite file; jobs are rows the test inserts, their
behaviour (normal, slow, hang, crash, diverge, error) chosen by the dataset's target_name.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from service.db import Database
from service.jobs import store
from service.jobs.local import LocalExecutor
from service.jobs.supervisor import JobSupervisor
from service.models import Checkpoint, EpochRecord, Model, ModelWeights, utcnow
from service.settings import Settings
from tests.service.jobs_fakes import (
    a_dead_pid,
    add_dataset,
    add_job,
    fake_worker_main,
    get_job,
    make_database,
    wait_for,
    wait_for_status,
)


def _fake_executor(settings: Settings, load_dataset) -> LocalExecutor:
    return LocalExecutor(workers=settings.workers, blas_threads=settings.worker_blas_threads,
                         memory_bytes=settings.worker_memory_bytes, load_dataset=load_dataset,
                         worker_target=fake_worker_main)


@pytest.fixture
def run_supervisor(tmp_path):
    """Build the database first (the test adds rows), then start a supervisor on demand."""
    started: list[JobSupervisor] = []
    databases: list[Database] = []

    def database(**overrides) -> Database:
        databases.append(make_database(tmp_path, **overrides))
        return databases[-1]

    def start(db: Database) -> JobSupervisor:
        supervisor = JobSupervisor(db.settings, db, executor_factory=_fake_executor)
        supervisor.start()
        started.append(supervisor)
        return supervisor

    yield database, start
    for supervisor in started:
        supervisor.stop()
    for db in databases:
        with db.read() as session:
            assert session.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        db.dispose()


def _model_bytes(database: Database, job_id: str) -> dict:
    with database.read() as session:
        model = session.execute(select(Model).where(Model.job_id == job_id)).scalar_one()
        return json.loads(session.get_one(ModelWeights, model.id).data)


def _epochs(database: Database, job_id: str) -> list[int]:
    with database.read() as session:
        query = select(EpochRecord.epoch).where(EpochRecord.job_id == job_id)
        return sorted(session.execute(query).scalars())


def _has_model(database: Database, job_id: str) -> bool:
    with database.read() as session:
        return session.execute(select(Model).where(Model.job_id == job_id)).first() is not None


def _request_cancel(database: Database, supervisor: JobSupervisor, job_id: str) -> None:
    with database.write() as session:
        session.execute(text("UPDATE jobs SET cancel_requested = 1 WHERE id = :id"),
                        {"id": job_id})
    supervisor.wake()


def test_a_queued_job_runs_and_publishes_its_model_with_every_epoch_recorded(run_supervisor):
    new_database, start = run_supervisor
    database = new_database()
    job_id = add_job(database, add_dataset(database), epochs=4)
    supervisor = start(database)

    job = wait_for_status(database, job_id, "succeeded", "failed", "cancelled")

    assert job.status == "succeeded" and (job.epoch, job.attempt) == (4, 1)
    assert job.stop_reason == "max_epochs" and job.lease_expires_at is None
    assert _epochs(database, job_id) == [1, 2, 3, 4]
    assert _model_bytes(database, job_id) == {"resumed_from": 0, "rows": 40, "attempt": 1,
                                              "X_dtype": "float32"}
    with database.read() as session:  # written each epoch, dropped with the model's publication
        assert session.get(Checkpoint, job_id) is None
    assert supervisor.is_healthy()


def test_two_workers_run_two_jobs_at_once(run_supervisor):
    new_database, start = run_supervisor
    database = new_database()
    dataset = add_dataset(database, "slow")
    jobs = [add_job(database, dataset, epochs=30) for _ in range(2)]
    start(database)

    wait_for(lambda: all(get_job(database, j).status == "running" for j in jobs))
    workers = {get_job(database, j).worker_id for j in jobs}
    assert len(workers) == 1  # one supervisor leases both; two processes train them


def test_cancel_stops_a_running_job_without_publishing_a_model(run_supervisor):
    new_database, start = run_supervisor
    database = new_database()
    job_id = add_job(database, add_dataset(database, "slow"), epochs=1000)
    supervisor = start(database)
    wait_for(lambda: get_job(database, job_id).epoch >= 1)

    _request_cancel(database, supervisor, job_id)

    # 1,000 slow epochs take minutes: ending within the default deadline means the cancel acted
    job = wait_for_status(database, job_id, "cancelled", "failed", "succeeded")
    assert (job.status, job.stop_reason) == ("cancelled", "cancelled")
    assert job.epoch < 1000
    assert not _has_model(database, job_id)


@pytest.mark.slow
def test_a_hung_worker_is_terminated_on_cancel_and_replaced(run_supervisor):
    new_database, start = run_supervisor
    database = new_database(workers=1)
    hung = add_job(database, add_dataset(database, "hang"))
    supervisor = start(database)
    wait_for_status(database, hung, "running")

    _request_cancel(database, supervisor, hung)

    assert wait_for_status(database, hung, "cancelled", timeout=15.0).status == "cancelled"
    after = add_job(database, add_dataset(database, "normal"))
    supervisor.wake()
    assert wait_for_status(database, after, "succeeded", timeout=15.0).status == "succeeded"


def test_a_killed_worker_resumes_its_job_from_the_last_checkpoint(run_supervisor):
    new_database, start = run_supervisor
    database = new_database()
    job_id = add_job(database, add_dataset(database, "crash_once_at:3"), epochs=5)
    start(database)

    job = wait_for_status(database, job_id, "succeeded", "failed", "cancelled")

    assert (job.status, job.attempt) == ("succeeded", 2)
    assert _model_bytes(database, job_id)["resumed_from"] == 2
    assert _epochs(database, job_id) == [1, 2, 3, 4, 5]


def test_a_job_whose_worker_keeps_dying_fails_worker_lost(run_supervisor):
    new_database, start = run_supervisor
    database = new_database(max_attempts=2)
    job_id = add_job(database, add_dataset(database, "crash_always"))
    start(database)

    job = wait_for_status(database, job_id, "failed", "succeeded", "cancelled")

    assert (job.status, job.failure_reason, job.attempt) == ("failed", "worker_lost", 2)
    assert "lost 2 times" in job.error


@pytest.mark.slow
def test_a_sigkilled_worker_process_is_noticed_and_its_job_resumes(run_supervisor):
    new_database, start = run_supervisor
    database = new_database(workers=1)
    job_id = add_job(database, add_dataset(database, "slow"), epochs=6)
    supervisor = start(database)
    wait_for(lambda: get_job(database, job_id).epoch >= 2)

    os.kill(supervisor.executor.worker_pids()[0], signal.SIGKILL)

    job = wait_for_status(database, job_id, "succeeded", "failed", timeout=30.0)
    assert (job.status, job.attempt) == ("succeeded", 2)
    assert _model_bytes(database, job_id)["resumed_from"] >= 2


def test_past_its_wall_time_a_job_fails_timed_out(run_supervisor):
    new_database, start = run_supervisor
    database = new_database(job_wall_time_seconds=0.5)
    job_id = add_job(database, add_dataset(database, "slow"), epochs=1000)
    start(database)

    job = wait_for_status(database, job_id, "failed", "succeeded", "cancelled", timeout=10.0)

    assert (job.status, job.failure_reason) == ("failed", "timed_out")
    assert "wall-time limit of 0.5 s" in job.error
    assert not _has_model(database, job_id)


def test_divergence_fails_the_job_with_the_engines_message(run_supervisor):
    new_database, start = run_supervisor
    database = new_database()
    job_id = add_job(database, add_dataset(database, "diverge"))
    start(database)

    job = wait_for_status(database, job_id, "failed", "succeeded")

    assert (job.failure_reason, job.stop_reason) == ("diverged", "diverged")
    assert job.error.startswith("loss became NaN at epoch 1")


def test_a_task_bug_fails_that_job_and_the_worker_runs_the_next(run_supervisor):
    new_database, start = run_supervisor
    database = new_database(workers=1)
    broken = add_job(database, add_dataset(database, "error"))
    fine = add_job(database, add_dataset(database, "normal"))
    start(database)

    job = wait_for_status(database, broken, "failed")
    assert job.failure_reason == "error" and "RuntimeError" in job.error
    assert "Traceback" not in job.error
    assert wait_for_status(database, fine, "succeeded").status == "succeeded"


def test_a_job_beyond_the_worker_memory_cap_fails_resource_exhausted(run_supervisor):
    new_database, start = run_supervisor
    database = new_database(workers=1, worker_memory_bytes=2 * 1024**3)
    greedy = add_job(database, add_dataset(database, "allocate"))
    fine = add_job(database, add_dataset(database, "normal"))
    start(database)

    job = wait_for_status(database, greedy, "failed", "succeeded")
    assert (job.failure_reason, job.attempt) == ("resource_exhausted", 1)
    assert "memory" in job.error
    assert wait_for_status(database, fine, "succeeded", "failed").status == "succeeded"


@pytest.mark.slow
def test_stop_requeues_running_jobs_and_the_next_supervisor_resumes_them(run_supervisor):
    new_database, start = run_supervisor
    database = new_database(workers=1)
    job_id = add_job(database, add_dataset(database, "slow"), epochs=8)
    first = start(database)
    wait_for(lambda: get_job(database, job_id).epoch >= 2)

    first.stop()
    job = get_job(database, job_id)
    assert (job.status, job.attempt, job.worker_id) == ("queued", 0, None)

    start(database)
    job = wait_for_status(database, job_id, "succeeded", "failed", timeout=30.0)
    assert job.status == "succeeded"
    assert _model_bytes(database, job_id)["resumed_from"] >= 2


class _StartsOnTheSecondTry(LocalExecutor):
    """The OS refuses the first start (EAGAIN: too many processes), then allows it."""

    def start(self) -> None:
        self.tries = getattr(self, "tries", 0) + 1
        if self.tries == 1:
            raise OSError(11, "Resource temporarily unavailable")
        super().start()


def test_an_executor_that_fails_to_start_is_started_again(run_supervisor):
    new_database, _ = run_supervisor
    database = new_database(workers=1)
    job_id = add_job(database, add_dataset(database))
    made: list[_StartsOnTheSecondTry] = []

    def factory(settings: Settings, load_dataset) -> LocalExecutor:
        made.append(_StartsOnTheSecondTry(
            workers=settings.workers, blas_threads=settings.worker_blas_threads,
            memory_bytes=None, load_dataset=load_dataset, worker_target=fake_worker_main))
        return made[-1]

    supervisor = JobSupervisor(database.settings, database, executor_factory=factory)
    supervisor.start()
    try:  # the thread died on the first failure before: the job stayed queued for good
        assert wait_for_status(database, job_id, "succeeded", timeout=30.0).status == "succeeded"
        assert made[0].tries == 2 and supervisor.is_healthy()
    finally:
        supervisor.stop()
    assert made[0].worker_pids() == []  # stop() closed the workers the second start made


class _RefusesEveryJob(LocalExecutor):
    """Every hand-off fails (say, a worker pipe that cannot take the message)."""

    submits = 0

    def submit(self, job) -> None:
        type(self).submits += 1
        raise RuntimeError("cannot hand the job over")


def test_a_job_the_executor_refuses_waits_in_the_queue_without_a_busy_loop(run_supervisor):
    new_database, _ = run_supervisor
    database = new_database(workers=1)
    job_id = add_job(database, add_dataset(database))

    def factory(settings: Settings, load_dataset) -> LocalExecutor:
        return _RefusesEveryJob(workers=1, blas_threads=1, memory_bytes=None,
                                load_dataset=load_dataset, worker_target=fake_worker_main)

    supervisor = JobSupervisor(database.settings, database, executor_factory=factory)
    per_round: list[int] = []
    claim_while_room = supervisor._claim_while_room

    def counted() -> None:
        before = _RefusesEveryJob.submits
        claim_while_room()
        per_round.append(_RefusesEveryJob.submits - before)

    supervisor._claim_while_room = counted  # type: ignore[method-assign]
    supervisor.start()
    try:  # the first round used to claim, fail, requeue and claim again without ever returning
        wait_for(lambda: len(per_round) >= 3)
        assert max(per_round) == 1  # one try per poll
        job = get_job(database, job_id)
        assert (job.status, job.attempt) == ("queued", 0)
    finally:
        supervisor.stop()


def test_at_start_up_a_job_left_running_by_a_dead_process_resumes_at_once(run_supervisor):
    new_database, start = run_supervisor
    database = new_database(lease_seconds=3600.0)
    dead_pid = a_dead_pid()
    job_id = add_job(database, add_dataset(database), status="running", attempt=1,
                     worker_id=f"{socket.gethostname()[:40]}:{dead_pid}:deadbeef",
                     lease_expires_at=utcnow() + timedelta(hours=1))
    start(database)

    job = wait_for_status(database, job_id, "succeeded", "failed", timeout=20.0)
    assert (job.status, job.attempt) == ("succeeded", 2)


def test_a_job_leased_by_a_live_instance_elsewhere_waits_for_its_lease(run_supervisor):
    new_database, start = run_supervisor
    database = new_database()
    job_id = add_job(database, add_dataset(database), status="running", attempt=1,
                     worker_id="other-host:1:cafe",
                     lease_expires_at=utcnow() + timedelta(seconds=1.5))
    lease_expired_at = get_job(database, job_id).lease_expires_at  # as stored (and read back)
    start(database)

    assert get_job(database, job_id).status == "running"
    job = wait_for_status(database, job_id, "succeeded", timeout=20.0)
    assert job.attempt == 2
    # The row had no started_at, so the claim of attempt 2 stamped it: only after the lease ran out.
    assert job.started_at is not None and lease_expired_at is not None
    assert job.started_at > lease_expired_at


def test_idle_polls_take_no_write_transaction_to_claim_until_a_job_is_queued(
    run_supervisor, monkeypatch
):
    calls = {"any_queued": 0, "claim_next": 0}

    def counted(name):
        original = getattr(store, name)

        def wrapper(*args, **kwargs):
            calls[name] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(store, name, wrapper)

    counted("any_queued")
    counted("claim_next")
    new_database, start = run_supervisor
    database = new_database()
    dataset = add_dataset(database)
    supervisor = start(database)

    wait_for(lambda: calls["any_queued"] >= 5, message="the supervisor polls for queued jobs")
    assert calls["claim_next"] == 0
    job_id = add_job(database, dataset)
    supervisor.wake()
    assert wait_for_status(database, job_id, "succeeded", "failed").status == "succeeded"
    assert calls["claim_next"] >= 1
