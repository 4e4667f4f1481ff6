"""Who may use the admin API, and the audit row every admin action leaves."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from common.platform.db import session_scope
from common.platform.migrate import upgrade_database
from common.platform.models import ChatJob, JobStatus
from tests.support.stack import SAMPLE_TEXTBOOK, TEST_PASSWORD, Stack, make_settings
from tests.web.assertions import assert_problem
from web import create_app

ADMIN_PREFIX = "/v1/admin"
IGNORED_METHODS = {"HEAD", "OPTIONS"}


def admin_routes(stack: Stack) -> list[tuple[str, str]]:
    """Every (method, URL) of the app under /v1/admin, with made-up ids in the path."""
    urls = stack.app.url_map.bind("localhost")
    routes = []
    for rule in stack.app.url_map.iter_rules():
        if not rule.rule.startswith(ADMIN_PREFIX):
            continue
        values = {name: str(uuid.uuid4()) for name in rule.arguments}
        for method in sorted((rule.methods or set()) - IGNORED_METHODS):
            routes.append((method, urls.build(rule.endpoint, values, method=method)))
    return routes


def test_the_route_list_covers_the_admin_api(idle_stack: Stack) -> None:
    routes = {(method, url.split("/")[3]) for method, url in admin_routes(idle_stack)}

    assert {("GET", "queues"), ("GET", "jobs"), ("POST", "jobs"), ("GET", "dlq")} <= routes
    assert {("GET", "audit"), ("POST", "users"), ("POST", "ingest"), ("GET", "ingest")} <= routes


def test_a_reader_gets_403_on_every_admin_route(idle_stack: Stack) -> None:
    reader = idle_stack.signup()
    wrong = []

    for method, url in admin_routes(idle_stack):
        response = idle_stack.client.open(url, method=method, json={}, headers=reader)
        if response.status_code != 403 or response.mimetype != "application/problem+json":
            wrong.append(f"{method} {url}: {response.status_code} {response.mimetype}")
        else:
            assert_problem(response, 403, "forbidden")

    assert wrong == []


def test_no_token_gets_401_on_every_admin_route(idle_stack: Stack) -> None:
    wrong = []

    for method, url in admin_routes(idle_stack):
        response = idle_stack.client.open(url, method=method, json={})
        if response.status_code != 401 or response.mimetype != "application/problem+json":
            wrong.append(f"{method} {url}: {response.status_code} {response.mimetype}")
        else:
            assert_problem(response, 401, "unauthorized")

    assert wrong == []


class Admin:
    """An administrator acting through the API."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.headers = stack.admin()
        self.email = stack.client.get("/v1/me", headers=self.headers).get_json()["email"]

    def post(self, url: str, body: dict[str, Any] | None = None) -> Any:
        """POST as this admin."""
        return self.stack.client.post(url, json=body or {}, headers=self.headers)

    def audit(self, **query: str) -> list[dict[str, Any]]:
        """This admin's audit entries, newest first."""
        response = self.stack.client.get(
            "/v1/admin/audit", query_string={"actor": self.email, **query}, headers=self.headers
        )
        assert response.status_code == 200, response.get_json()
        return list(response.get_json()["data"])


@pytest.fixture
def admin(idle_stack: Stack) -> Admin:
    """A fresh administrator (so their audit entries are theirs alone)."""
    return Admin(idle_stack)


def _reader_with_job(stack: Stack) -> tuple[str, str]:
    headers = stack.signup()
    user_id = stack.client.get("/v1/me", headers=headers).get_json()["id"]
    return user_id, stack.submit(headers, message="What is a ROS 2 node?")["id"]


def test_cancel_and_retry_are_audited(idle_stack: Stack, admin: Admin) -> None:
    _user_id, job_id = _reader_with_job(idle_stack)

    assert admin.post(f"/v1/admin/jobs/{job_id}/cancel").status_code == 200
    assert admin.post(f"/v1/admin/jobs/{job_id}/retry").status_code == 200

    rows = admin.audit(target_id=job_id)
    assert [(r["action"], r["outcome"], r["actor"]) for r in rows] == [
        ("job.retry", "ok", admin.email),
        ("job.cancel", "ok", admin.email),
    ]
    assert all(r["target_kind"] == "job" and r["detail"] == {"kind": "chat"} for r in rows)
    assert all(r["request_id"] for r in rows)


def test_a_bulk_retry_is_audited(idle_stack: Stack, admin: Admin) -> None:
    user_id, _job_id = _reader_with_job(idle_stack)

    response = admin.post("/v1/admin/jobs/retry", {"user": user_id, "dry_run": True})

    assert response.status_code == 202, response.get_json()
    [row] = admin.audit(action="jobs.bulk_retry")
    assert (row["outcome"], row["actor"]) == ("ok", admin.email)
    assert row["detail"]["reprocess_job"] == response.get_json()["id"]
    assert row["detail"]["filters"]["user"] == user_id and row["detail"]["dry_run"] is True


def test_a_role_change_is_audited(idle_stack: Stack, admin: Admin) -> None:
    user_id, _job_id = _reader_with_job(idle_stack)

    response = admin.post(f"/v1/admin/users/{user_id}/role", {"role": "admin"})

    assert response.status_code == 200, response.get_json()
    [row] = admin.audit(target_id=user_id)
    assert (row["action"], row["outcome"], row["actor"]) == ("user.role", "ok", admin.email)
    assert row["detail"] == {"role": "admin", "previous": "user"}


def test_an_ingest_is_audited(idle_stack: Stack, admin: Admin) -> None:
    response = admin.post("/v1/admin/ingest", {"path": str(SAMPLE_TEXTBOOK)})

    assert response.status_code == 202, response.get_json()
    job_id = response.get_json()["id"]
    rows = [r for r in admin.audit() if job_id in (r["target_id"], *r["detail"].values())]
    assert [(r["outcome"], r["actor"]) for r in rows] == [("ok", admin.email)], admin.audit()


def test_a_refused_action_is_audited_as_refused(idle_stack: Stack, admin: Admin) -> None:
    _user_id, job_id = _reader_with_job(idle_stack)
    with session_scope(idle_stack.resources.sessions) as session:
        done = update(ChatJob).where(ChatJob.id == uuid.UUID(job_id))
        session.execute(done.values(status=JobStatus.COMPLETED.value))

    response = admin.post(f"/v1/admin/jobs/{job_id}/retry")

    assert_problem(response, 409, "job_not_retryable")
    [row] = admin.audit(target_id=job_id)
    assert (row["action"], row["outcome"], row["actor"]) == ("job.retry", "refused", admin.email)
    assert row["detail"] == {"error": "job_not_retryable"}


@pytest.mark.parametrize("environment", ["test", "production"])
def test_admin_emails_make_no_admin_outside_development(
    tmp_path: Path, redis_url: str, caplog: pytest.LogCaptureFixture, environment: str
) -> None:
    email = f"boss-{uuid.uuid4().hex[:8]}@example.com"
    database = f"sqlite:///{tmp_path / 'bookchat.db'}"
    settings = make_settings(
        tmp_path, redis_url, database, environment=environment, admin_emails=[email.upper()]
    )
    upgrade_database(settings)
    app = create_app(settings)
    try:
        with caplog.at_level(logging.WARNING, logger="common.accounts.users"):
            body = {"email": email, "password": TEST_PASSWORD}
            response = app.test_client().post("/v1/auth/signup", json=body)

        assert response.status_code == 201, response.get_json()
        assert response.get_json()["user"]["role"] == "user"
        token = {"Authorization": f"Bearer {response.get_json()['access_token']}"}
        assert_problem(app.test_client().get("/v1/admin/queues", headers=token), 403, "forbidden")
        assert "applies only when ENVIRONMENT=development" in caplog.text
    finally:
        app.extensions["bookchat"].close()


def test_admin_emails_make_an_admin_in_development_with_a_warning(
    tmp_path: Path, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    email = f"dev-{uuid.uuid4().hex[:8]}@example.com"
    settings = make_settings(tmp_path, redis_url, environment="development", admin_emails=[email])
    upgrade_database(settings)
    app = create_app(settings)
    try:
        with caplog.at_level(logging.WARNING, logger="common.accounts.users"):
            body = {"email": email, "password": TEST_PASSWORD}
            response = app.test_client().post("/v1/auth/signup", json=body)

        assert response.status_code == 201, response.get_json()
        assert response.get_json()["user"]["role"] == "admin"
        assert f"{email} signs up as an admin because it is in ADMIN_EMAILS" in caplog.text
    finally:
        app.extensions["bookchat"].close()
