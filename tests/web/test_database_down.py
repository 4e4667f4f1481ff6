"""The database away (PostgreSQL behind a proxy we cut): every route that needs it is a 503 with
Retry-After at once, and everything works again, nothing lost, once it is back."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Response
from sqlalchemy import text

from tests.support.redis_server import RedisServer
from tests.support.stack import TEST_PASSWORD, Stack, make_settings, start_stack
from tests.support.tcp_proxy import TcpProxy
from tests.web.assertions import assert_unavailable
from web.resources import db

pytestmark = pytest.mark.slow  # real-process fault runs: left out of `make test-fast`

JOBS = "/v1/chat/jobs"
QUICKLY = 5.0  # seconds: an outage is answered, never waited out


@pytest.fixture(scope="module")
def app_stack(
    tmp_path_factory: pytest.TempPathFactory, proxied_postgres_url: str
) -> Iterator[Stack]:
    """The API on the proxied PostgreSQL and a Redis of its own, with no worker."""
    var_dir = tmp_path_factory.mktemp("database-down")
    redis_server = RedisServer(var_dir / "redis").start()
    running = start_stack(
        make_settings(var_dir, redis_server.url, proxied_postgres_url), with_worker=False
    )
    yield running
    running.stop()
    redis_server.stop()


@dataclass
class World:
    """What a reader and an admin made while the database was up."""

    email: str
    reader: dict[str, str]
    refresh: dict[str, str]
    admin: dict[str, str]
    job: dict[str, Any]
    ingest: dict[str, Any]

    def headers(self, who: str) -> dict[str, str]:
        """The Authorization header of `reader`, `refresh` or `admin`."""
        headers: dict[str, str] = getattr(self, who)
        return headers


@pytest.fixture(scope="module")
def world(app_stack: Stack) -> World:
    """A reader with a queued job, and an admin with a queued ingest."""
    email = f"db-outage-{uuid.uuid4().hex[:10]}@example.com"
    signup = app_stack.client.post(
        "/v1/auth/signup", json={"email": email, "password": TEST_PASSWORD}
    )
    tokens = signup.get_json()
    reader = {"Authorization": f"Bearer {tokens['access_token']}"}
    admin = app_stack.admin()
    ingest = app_stack.client.post("/v1/admin/ingest", json={"path": "/tmp"}, headers=admin)
    assert ingest.status_code == 202, ingest.get_json()
    return World(
        email=email,
        reader=reader,
        refresh={"Authorization": f"Bearer {tokens['refresh_token']}"},
        admin=admin,
        job=app_stack.submit(reader, message="What is a node?"),
        ingest=ingest.get_json(),
    )


@pytest.fixture
def database_down(world: World, postgres_proxy: TcpProxy) -> Iterator[None]:
    """The database unreachable for the test (after `world` was made), back after it."""
    postgres_proxy.cut()
    yield
    postgres_proxy.restore()


def _new_user() -> dict[str, str]:
    return {"email": f"new-{uuid.uuid4().hex[:10]}@example.com", "password": TEST_PASSWORD}


# (name, method, path, body, who)
ROUTES: list[tuple[str, str, str, Any, str]] = [
    ("signup", "post", "/v1/auth/signup", _new_user, "nobody"),
    ("login", "post", "/v1/auth/login", "login", "nobody"),
    ("refresh", "post", "/v1/auth/refresh", None, "refresh"),
    ("me", "get", "/v1/me", None, "reader"),
    ("submit", "post", JOBS, {"message": "Is the database up?"}, "reader"),
    ("read", "get", f"{JOBS}/{{job}}", None, "reader"),
    ("long-poll", "get", f"{JOBS}/{{job}}?wait=2", None, "reader"),
    ("events", "get", f"{JOBS}/{{job}}/events", None, "reader"),
    ("conversations", "get", "/v1/conversations", None, "reader"),
    ("conversation", "get", "/v1/conversations/{conversation}", None, "reader"),
    ("ingest", "post", "/v1/admin/ingest", {"path": "/tmp"}, "admin"),
    ("ingest-list", "get", "/v1/admin/ingest", None, "admin"),
    ("ingest-read", "get", "/v1/admin/ingest/{ingest}", None, "admin"),
]


def _request(stack: Stack, world: World, method: str, path: str, body: Any, who: str) -> Any:
    if body == "login":
        body = {"email": world.email, "password": TEST_PASSWORD}
    elif callable(body):
        body = body()
    url = path.format(
        job=world.job["id"],
        conversation=world.job["conversation_id"],
        ingest=world.ingest["id"],
    )
    headers = {} if who == "nobody" else world.headers(who)
    headers = {**headers, "X-Request-ID": "db-outage-request-01"}
    started = time.monotonic()
    response = getattr(stack.client, method)(url, json=body, headers=headers)
    assert time.monotonic() - started < QUICKLY
    return response


@pytest.mark.parametrize(
    ("method", "path", "body", "who"),
    [route[1:] for route in ROUTES],
    ids=[route[0] for route in ROUTES],
)
@pytest.mark.usefixtures("database_down")
def test_every_route_that_needs_the_database_is_503_with_retry_after(
    app_stack: Stack, world: World, method: str, path: str, body: Any, who: str
) -> None:
    response = _request(app_stack, world, method, path, body, who)

    problem = assert_unavailable(response, "database_unavailable")
    assert problem["request_id"] == "db-outage-request-01"


def test_after_the_outage_every_route_works_and_nothing_is_lost(
    app_stack: Stack, world: World, postgres_proxy: TcpProxy
) -> None:
    postgres_proxy.cut()
    assert_unavailable(app_stack.client.get("/v1/me", headers=world.reader), "database_unavailable")

    postgres_proxy.restore()

    # The pool held connections the cut killed: pre-ping replaces them, no request fails.
    for name, method, path, body, who in ROUTES:
        response = _request(app_stack, world, method, path, body, who)
        assert response.status_code in (200, 201, 202), (name, response.get_json())
        if name == "events":
            response.close()  # a queued job's stream would wait for events
    job = app_stack.client.get(f"{JOBS}/{world.job['id']}", headers=world.reader).get_json()
    assert job["id"] == world.job["id"] and job["message"] == "What is a node?"
    conversations = app_stack.client.get("/v1/conversations", headers=world.reader).get_json()
    assert world.job["conversation_id"] in {row["id"] for row in conversations["data"]}


def test_a_commit_that_loses_the_database_is_503_and_the_request_ends_cleanly(
    app_stack: Stack, world: World, postgres_proxy: TcpProxy
) -> None:
    app = app_stack.app
    try:
        with app.test_request_context("/v1/me", headers={"X-Request-ID": "db-commit-request-01"}):
            db().execute(text("SELECT 1"))  # the request's transaction is open
            postgres_proxy.cut()
            response = app.process_response(Response("{}", status=200))
        # Leaving the context rolled the dead session back and closed it without raising.
    finally:
        postgres_proxy.restore()

    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "database_unavailable"
    assert response.get_json()["request_id"] == "db-commit-request-01"
    assert response.headers["X-Request-ID"] == "db-commit-request-01"
    assert int(response.headers["Retry-After"]) >= 1
