"""The admin ingest API against an app with no worker: jobs stay queued, access is for admins."""

from __future__ import annotations

import base64
import json
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from common.jobs.queue import INGEST_QUEUE
from common.platform.models import AuditEntry, IngestJob
from common.platform.redis_client import make_redis
from tests.support.redis_server import RedisServer
from tests.support.stack import SAMPLE_TEXTBOOK, Stack, make_settings, start_stack
from tests.web.assertions import assert_problem

INGEST = "/v1/admin/ingest"
COUNTS = (
    "files_total",
    "files_seen",
    "files_changed",
    "files_skipped",
    "files_deleted",
    "files_failed",
    "chunks_written",
    "embeddings_computed",
)


@pytest.fixture(scope="module")
def admin(idle_stack: Stack) -> dict[str, str]:
    """An administrator's Authorization header."""
    return idle_stack.admin()


def me(stack: Stack, headers: dict[str, str]) -> uuid.UUID:
    """The signed-in account's id."""
    return uuid.UUID(stack.client.get("/v1/me", headers=headers).get_json()["id"])


def audit_entries(stack: Stack, action: str, job_id: str) -> list[AuditEntry]:
    """The audit rows of one action on one job, read from the database."""
    with stack.resources.sessions() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()
    return [row for row in rows if row.detail.get("job_id") == job_id]


def _queued_ingest_kwargs(stack: Stack) -> list[dict[str, Any]]:
    """The keyword arguments of every ingest task waiting in the queue."""
    raw: Any = make_redis(stack.settings).lrange(INGEST_QUEUE, 0, -1)
    messages = [json.loads(item) for item in raw]
    return [json.loads(base64.b64decode(m["body"]))[1] for m in messages]


def test_an_admin_queues_an_ingest(idle_stack: Stack, admin: dict[str, str]) -> None:
    response = idle_stack.client.post(INGEST, json={"path": "/srv/book"}, headers=admin)

    assert response.status_code == 202
    job = response.get_json()
    assert response.headers["Location"] == f"{INGEST}/{job['id']}"
    assert job["object"] == "ingest.job"
    assert (job["status"], job["path"], job["full"]) == ("queued", "/srv/book", False)
    assert (job["mode"], job["document"], job["allow_empty"]) == ("update", None, False)
    me = idle_stack.client.get("/v1/me", headers=admin).get_json()
    assert job["requested_by"] == me["id"]
    assert all(job[name] == 0 for name in COUNTS), job
    assert job["failures"] == [] and job["collection"] is None
    assert job["error_code"] is None and job["error_message"] is None
    assert job["started_at"] is None and job["completed_at"] is None and job["seconds"] is None
    # The queue carries only the job's id; the row holds the rest.
    assert {"full": False, "run_id": job["id"]} in _queued_ingest_kwargs(idle_stack)


def test_location_reads_the_queued_job(idle_stack: Stack, admin: dict[str, str]) -> None:
    body = {"path": "/srv/book", "full": True}
    created = idle_stack.client.post(INGEST, json=body, headers=admin)

    read = idle_stack.client.get(created.headers["Location"], headers=admin)

    assert read.status_code == 200
    assert read.get_json() == created.get_json()
    assert read.get_json()["full"] is True and read.get_json()["status"] == "queued"
    assert read.get_json()["mode"] == "full"


def test_the_api_does_not_look_at_the_path(idle_stack: Stack, admin: dict[str, str]) -> None:
    # The worker checks paths, so the API answers alike whether they exist, are folders or not.
    bodies = [
        {"path": "/etc", "allow_empty": True},
        {"path": "../../../etc"},
        {"path": "/no/such/folder"},
        {"path": str(SAMPLE_TEXTBOOK / "intro.md")},
        {"path": str(SAMPLE_TEXTBOOK)},
    ]

    responses = [idle_stack.client.post(INGEST, json=body, headers=admin) for body in bodies]

    assert {response.status_code for response in responses} == {202}
    assert len({tuple(sorted(response.get_json())) for response in responses}) == 1
    assert responses[0].get_json()["allow_empty"] is True


def test_starting_an_ingest_is_audited(idle_stack: Stack, admin: dict[str, str]) -> None:
    body = {"path": "/srv/audited", "full": True}

    job = idle_stack.client.post(INGEST, json=body, headers=admin).get_json()

    [entry] = audit_entries(idle_stack, "ingest.start", job["id"])
    assert (entry.outcome, entry.target_kind) == ("ok", "ingest_job")
    assert entry.actor_id == me(idle_stack, admin)
    assert entry.detail == {
        "path": "/srv/audited",
        "full": True,
        "allow_empty": False,
        "job_id": job["id"],
        "book": "audited",
    }


def test_jobs_are_listed_newest_first(idle_stack: Stack, admin: dict[str, str]) -> None:
    ids = [
        idle_stack.client.post(INGEST, json={"path": f"/srv/b{i}"}, headers=admin).get_json()["id"]
        for i in range(3)
    ]

    listed = idle_stack.client.get(f"{INGEST}?limit=2", headers=admin)

    assert listed.status_code == 200
    body = listed.get_json()
    assert body["object"] == "list"
    assert [job["id"] for job in body["data"]] == [ids[2], ids[1]]
    assert all(job["object"] == "ingest.job" for job in body["data"])


@pytest.mark.parametrize("limit", ["0", "101", "many"])
def test_a_bad_limit_is_422(idle_stack: Stack, admin: dict[str, str], limit: str) -> None:
    response = idle_stack.client.get(f"{INGEST}?limit={limit}", headers=admin)

    assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize(
    "body",
    [{}, {"path": ""}, {"path": "x" * 4097}, {"path": "/srv/book", "extra": 1}, {"path": 5}],
)
def test_an_invalid_body_is_422(
    idle_stack: Stack, admin: dict[str, str], body: dict[str, Any]
) -> None:
    response = idle_stack.client.post(INGEST, json=body, headers=admin)

    assert_problem(response, 422, "validation_error")


def test_an_unknown_job_is_404(idle_stack: Stack, admin: dict[str, str]) -> None:
    response = idle_stack.client.get(f"{INGEST}/{uuid.uuid4()}", headers=admin)

    assert_problem(response, 404, "not_found")


def test_a_malformed_id_is_404(idle_stack: Stack, admin: dict[str, str]) -> None:
    # Ids are typed in the URL map: a value that is not a UUID names no route.
    response = idle_stack.client.get(f"{INGEST}/not-a-uuid", headers=admin)

    assert_problem(response, 404, "not_found")


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("post", INGEST, {"path": "/srv/book"}),
        ("post", INGEST, {"path": ""}),  # refused before the body is validated
        ("get", INGEST, None),
        ("get", f"{INGEST}/00000000-0000-4000-8000-00000000abcd", None),  # no such job
    ],
)
def test_a_reader_is_forbidden(
    idle_stack: Stack, method: str, url: str, body: dict[str, Any] | None
) -> None:
    headers = idle_stack.signup()

    response = getattr(idle_stack.client, method)(url, json=body, headers=headers)

    assert_problem(response, 403, "forbidden")


@pytest.mark.parametrize("body", [{"path": "/srv/book"}, {"path": ""}])
def test_anonymous_callers_get_401(idle_stack: Stack, body: dict[str, Any]) -> None:
    response = idle_stack.client.post(INGEST, json=body)

    assert_problem(response, 401, "unauthorized")
    assert_problem(idle_stack.client.get(INGEST), 401, "unauthorized")


def test_with_the_broker_down_an_ingest_is_503_and_the_job_failed(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = RedisServer(tmp_path / "redis").start()
    stack = start_stack(make_settings(tmp_path, store.url), with_worker=False)
    try:
        headers = stack.admin()
        # Tokens stay on the stack's Redis; only the broker is unreachable.
        stack.resources.celery.conf.broker_url = f"redis://127.0.0.1:{port}/0"
        response = stack.client.post(INGEST, json={"path": "/srv/book"}, headers=headers)

        assert_problem(response, 503, "service_unavailable")
        with stack.resources.sessions() as session:
            jobs = session.scalars(select(IngestJob)).all()
        assert [(job.status, job.error_message) for job in jobs] == [
            ("failed", "the job could not be queued")
        ]
        with stack.resources.sessions() as session:
            [entry] = session.scalars(select(AuditEntry)).all()
        assert (entry.action, entry.outcome) == ("ingest.start", "refused")
        assert entry.detail["error"] == "service_unavailable"
    finally:
        stack.stop()
        store.stop()
