"""create_checked_job: the one submission path that POST /v1/jobs and POST /v1/sweeps share."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from service.job_submission import create_checked_job
from service.problems import NotFound, TooManyRequests, Unprocessable
from service.schemas import JobCreate
from tests.service.api_helpers import job_body, job_count
from tests.service.jobs_fakes import add_dataset, make_database

SERVICE = Path(__file__).resolve().parents[2] / "service"


def test_create_checked_job_queues_the_normalised_spec(tmp_path: Path) -> None:
    database = make_database(tmp_path)
    dataset_id = add_dataset(database)  # classification, 3 features, classes [0, 1], owner public
    body = JobCreate.model_validate(job_body(dataset_id, n_classes=2, seed=None))
    with database.write() as session:
        job = create_checked_job(session, database.settings, owner="public", body=body)
    assert (job.status, job.dataset_id, job.epochs) == ("queued", dataset_id, 3)
    assert job.spec["loss"] == "cross_entropy"  # resolved from the classification task
    assert isinstance(job.spec["seed"], int) and 0 <= job.spec["seed"] < 2**63
    assert job_count(database) == 1


def test_create_checked_job_refuses_another_owners_dataset(tmp_path: Path) -> None:
    database = make_database(tmp_path)
    body = JobCreate.model_validate(job_body(add_dataset(database), n_classes=2))
    with pytest.raises(NotFound) as refused, database.write() as session:
        create_checked_job(session, database.settings, owner="mallory", body=body)
    assert refused.value.errors is not None
    assert refused.value.errors[0]["loc"] == ["body", "dataset_id"]
    assert job_count(database) == 0


def test_create_checked_job_refuses_an_output_that_does_not_fit_the_classes(
    tmp_path: Path,
) -> None:
    database = make_database(tmp_path)
    body = JobCreate.model_validate(job_body(add_dataset(database), n_classes=3))
    with pytest.raises(Unprocessable), database.write() as session:
        create_checked_job(session, database.settings, owner="public", body=body)
    assert job_count(database) == 0


def test_create_checked_job_refuses_past_the_queue_limit(tmp_path: Path) -> None:
    database = make_database(tmp_path, max_queued_jobs_per_owner=1)
    body = JobCreate.model_validate(job_body(add_dataset(database), n_classes=2))
    with database.write() as session:
        create_checked_job(session, database.settings, owner="public", body=body)
    with pytest.raises(TooManyRequests), database.write() as session:
        create_checked_job(session, database.settings, owner="public", body=body)
    assert job_count(database) == 1


def private_names_imported_across_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{path.name}: from {node.module} import {alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("service")
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]


def test_no_service_module_imports_another_modules_private_names() -> None:
    found = [
        hit
        for path in sorted(SERVICE.rglob("*.py"))
        for hit in private_names_imported_across_modules(path)
    ]
    assert found == []
