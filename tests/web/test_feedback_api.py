"""Rating answers through the API, on SQLite and PostgreSQL (answers finished in the database)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, update

from common.platform.db import session_scope
from common.platform.models import AnswerFeedback, ChatJob, JobStatus, utcnow
from tests.conftest import _new_redis_db
from tests.support.stack import Stack, make_settings, start_stack
from tests.web.assertions import assert_problem
from web import create_app

JOBS = "/v1/chat/jobs"


@pytest.fixture(scope="module")
def db_stack(
    tmp_path_factory: pytest.TempPathFactory, redis_base_url: str, database_url: str
) -> Iterator[Stack]:
    """The API alone, on SQLite and on PostgreSQL."""
    var_dir: Path = tmp_path_factory.mktemp("feedback")
    running = start_stack(
        make_settings(var_dir, _new_redis_db(redis_base_url), database_url), with_worker=False
    )
    yield running
    running.stop()


def finished_job(stack: Stack, headers: dict[str, str], status: str = "completed") -> str:
    """A question of the reader's, finished (as a worker would) with a cited answer."""
    job_id = stack.submit(headers, message=f"What is a node? {uuid.uuid4().hex[:6]}")["id"]
    with session_scope(stack.resources.sessions) as session:
        session.execute(
            update(ChatJob)
            .where(ChatJob.id == uuid.UUID(job_id))
            .values(status=status, answer="A node is a process [1].", completed_at=utcnow())
        )
    return job_id


def rate(stack: Stack, headers: dict[str, str], job_id: str, **body: Any) -> Any:
    return stack.client.post(f"{JOBS}/{job_id}/feedback", json=body, headers=headers)


def guest(stack: Stack) -> dict[str, str]:
    token = stack.client.post("/v1/auth/guest").get_json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_first_rating_is_201_and_a_second_replaces_it_with_200(db_stack: Stack) -> None:
    headers = db_stack.signup()
    job_id = finished_job(db_stack, headers)

    first = rate(db_stack, headers, job_id, rating="up")
    second = rate(
        db_stack, headers, job_id, rating="down", reason="not_in_book", comment="  Too vague. "
    )

    assert first.status_code == 201, first.get_json()
    assert first.get_json()["rating"] == "up" and first.get_json()["reason"] is None
    assert second.status_code == 200, second.get_json()
    body = second.get_json()
    assert (body["rating"], body["reason"], body["comment"]) == (
        "down",
        "not_in_book",
        "Too vague.",
    )
    job = db_stack.client.get(f"{JOBS}/{job_id}", headers=headers).get_json()
    assert job["feedback"]["rating"] == "down" and job["feedback"]["comment"] == "Too vague."
    with session_scope(db_stack.resources.sessions) as session:
        stored = select(func.count()).where(AnswerFeedback.job_id == uuid.UUID(job_id))
        assert session.scalar(stored) == 1


def test_the_conversation_shows_the_rating_on_the_assistant_message(db_stack: Stack) -> None:
    headers = db_stack.signup()
    job_id = finished_job(db_stack, headers)
    rate(db_stack, headers, job_id, rating="up")
    job = db_stack.client.get(f"{JOBS}/{job_id}", headers=headers).get_json()

    detail = db_stack.client.get(
        f"/v1/conversations/{job['conversation_id']}", headers=headers
    ).get_json()

    user, assistant = detail["messages"]
    assert user["feedback"] is None
    assert assistant["feedback"]["rating"] == "up"


def test_another_readers_job_is_404_and_unfinished_is_409(db_stack: Stack) -> None:
    owner, stranger = db_stack.signup("owner"), db_stack.signup("stranger")
    job_id = finished_job(db_stack, owner)
    queued = db_stack.submit(owner, message="Still waiting?")["id"]

    assert_problem(rate(db_stack, stranger, job_id, rating="up"), 404, "not_found")
    assert_problem(
        db_stack.client.delete(f"{JOBS}/{job_id}/feedback", headers=stranger), 404, "not_found"
    )
    assert_problem(rate(db_stack, owner, str(uuid.uuid4()), rating="up"), 404, "not_found")
    assert_problem(rate(db_stack, owner, queued, rating="up"), 409, "job_not_rateable")
    failed = finished_job(db_stack, owner, status=JobStatus.FAILED.value)
    assert_problem(rate(db_stack, owner, failed, rating="down"), 409, "job_not_rateable")


@pytest.mark.parametrize(
    "body",
    [
        {"rating": "up", "reason": "wrong"},
        {"rating": "meh"},
        {"rating": "down", "reason": "boring"},
        {"rating": "down", "comment": "x" * 2001},
        {"rating": "down", "extra": 1},
        {},
    ],
)
def test_a_malformed_rating_is_422(db_stack: Stack, body: dict[str, Any]) -> None:
    headers = db_stack.signup()
    job_id = finished_job(db_stack, headers)

    assert_problem(rate(db_stack, headers, job_id, **body), 422)


def test_a_nul_in_the_comment_is_refused_like_in_any_field(db_stack: Stack) -> None:
    headers = db_stack.signup()
    job_id = finished_job(db_stack, headers)

    response = rate(db_stack, headers, job_id, rating="down", comment="a\u0000b")

    assert_problem(response, 400, "invalid_input")
    assert db_stack.client.get(f"{JOBS}/{job_id}", headers=headers).get_json()["feedback"] is None


def test_signed_out_is_401(db_stack: Stack) -> None:
    response = db_stack.client.post(f"{JOBS}/{uuid.uuid4()}/feedback", json={"rating": "up"})

    assert_problem(response, 401)


def test_a_guest_rates_an_incomplete_answer_and_withdraws_it(db_stack: Stack) -> None:
    headers = guest(db_stack)
    job_id = finished_job(db_stack, headers, status=JobStatus.INCOMPLETE.value)

    assert rate(db_stack, headers, job_id, rating="down", reason="unclear").status_code == 201
    withdrawn = db_stack.client.delete(f"{JOBS}/{job_id}/feedback", headers=headers)

    assert withdrawn.status_code == 204
    assert db_stack.client.get(f"{JOBS}/{job_id}", headers=headers).get_json()["feedback"] is None


def test_the_admin_job_view_shows_the_rating_and_label(db_stack: Stack) -> None:
    headers, admin = db_stack.signup(), db_stack.admin()
    job_id = finished_job(db_stack, headers)
    with session_scope(db_stack.resources.sessions) as session:
        values = {"label": "uncertain", "top_similarity": 0.33}
        session.execute(update(ChatJob).where(ChatJob.id == uuid.UUID(job_id)).values(values))
    rate(db_stack, headers, job_id, rating="down", reason="wrong", comment="Wrong joint.")

    detail = db_stack.client.get(f"/v1/admin/jobs/{job_id}", headers=admin).get_json()

    assert detail["label"] == "uncertain"
    assert detail["job"]["label"] == "uncertain" and detail["job"]["top_similarity"] == 0.33
    assert detail["job"]["feedback"]["comment"] == "Wrong joint."
    listed = db_stack.client.get("/v1/admin/jobs?kind=chat&label=uncertain", headers=admin)
    assert job_id in [row["id"] for row in listed.get_json()["data"]]
    assert all(row["label"] == "uncertain" for row in listed.get_json()["data"])


def test_the_rating_goes_with_the_account(db_stack: Stack) -> None:
    headers = db_stack.signup()
    job_id = finished_job(db_stack, headers)
    rate(db_stack, headers, job_id, rating="up")

    assert db_stack.client.delete("/v1/me", headers=headers).status_code == 204

    with session_scope(db_stack.resources.sessions) as session:
        left = select(func.count()).where(AnswerFeedback.job_id == uuid.UUID(job_id))
        assert session.scalar(left) == 0


@pytest.fixture(scope="module")
def limited_app(db_stack: Stack) -> Iterator[Flask]:
    """The app with a limit of 2 ratings a minute, on the stack's database and Redis."""
    app = create_app(db_stack.settings.model_copy(update={"rate_limit_feedback": "2/minute"}))
    yield app
    app.extensions["bookchat"].close()


def test_ratings_are_limited_per_reader(db_stack: Stack, limited_app: Flask) -> None:
    headers, other = db_stack.signup(), db_stack.signup()
    job_id, others = finished_job(db_stack, headers), finished_job(db_stack, other)
    client = limited_app.test_client()
    path = f"{JOBS}/{job_id}/feedback"

    statuses = [client.post(path, json={"rating": "up"}, headers=headers).status_code for _ in "ab"]
    refused = client.post(path, json={"rating": "down"}, headers=headers)

    assert statuses == [201, 200]
    body = assert_problem(refused, 429, "rate_limited")
    assert body["scope"] == "feedback-user"
    mine = client.post(f"{JOBS}/{others}/feedback", json={"rating": "up"}, headers=other)
    assert mine.status_code == 201
