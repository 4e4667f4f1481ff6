"""A hung PostgreSQL (connections open, nothing answers) is an outage, never a wait.

The API reaches PostgreSQL through a proxy that the test stalls after the pool holds open
connections: every route answers 503 problem+json with Retry-After (and `/readyz` its not-ready
report) instead of holding the request until the server answers. The requests run at once, each
in its own thread, and the test fails (rather than hangs) if one has not answered by a generous
deadline. Without a client-side deadline on the connections they never answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import ExitStack
from typing import Any

import pytest
from flask import Response
from sqlalchemy import text
from werkzeug.test import TestResponse

from tests.support.redis_server import RedisServer
from tests.support.stack import TEST_PASSWORD, Stack, make_settings, start_stack
from tests.support.tcp_proxy import TcpProxy
from tests.web.assertions import assert_unavailable
from web.problems import outage_problem
from web.resources import db

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
JOBS = "/v1/chat/jobs"
DEADLINE_S = 60.0  # fail instead of hanging; an answer takes a deadline and a connect time-out


@pytest.fixture(scope="module")
def app_stack(
    tmp_path_factory: pytest.TempPathFactory, proxied_postgres_url: str
) -> Iterator[Stack]:
    """The API on the proxied PostgreSQL with short deadlines, a Redis of its own, no worker."""
    var_dir = tmp_path_factory.mktemp("hung-database")
    redis_server = RedisServer(var_dir / "redis").start()
    settings = make_settings(
        var_dir,
        redis_server.url,
        proxied_postgres_url,
        database_statement_timeout_seconds=1.0,
        database_connect_timeout_seconds=2,
    )
    running = start_stack(settings, with_worker=False)
    yield running
    running.stop()
    redis_server.stop()


def test_every_route_answers_503_while_postgresql_is_hung(
    app_stack: Stack, postgres_proxy: TcpProxy
) -> None:
    email = f"hung-db-{uuid.uuid4().hex[:10]}@example.com"
    tokens = app_stack.client.post(
        "/v1/auth/signup", json={"email": email, "password": TEST_PASSWORD}
    ).get_json()
    reader = {"Authorization": f"Bearer {tokens['access_token']}"}
    refresh = {"Authorization": f"Bearer {tokens['refresh_token']}"}
    job = app_stack.submit(reader, message="What is a node?")
    login = {"email": email, "password": TEST_PASSWORD}
    calls: dict[str, tuple[str, str, Any, dict[str, str]]] = {
        "submit": ("post", JOBS, {"message": "Is the database up?"}, reader),
        "me": ("get", "/v1/me", None, reader),
        "read": ("get", f"{JOBS}/{job['id']}", None, reader),
        "conversations": ("get", "/v1/conversations", None, reader),
        "login": ("post", "/v1/auth/login", login, {}),
        "refresh": ("post", "/v1/auth/refresh", None, refresh),
        "readyz": ("get", "/readyz?detail=true", None, {}),
    }

    def call(method: str, path: str, body: Any, headers: dict[str, str]) -> TestResponse:
        response: TestResponse = getattr(app_stack.client, method)(path, json=body, headers=headers)
        return response

    # Fill the pool with open connections (5), then the server answers nothing on them or on
    # new ones: some routes wait on an open connection, the others on a new one.
    with ExitStack() as held:
        for _ in range(5):  # the pool keeps five
            held.enter_context(app_stack.resources.engine.connect()).execute(text("SELECT 1"))
    postgres_proxy.stall()
    try:
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            futures = {name: pool.submit(call, *args) for name, args in calls.items()}
            _done, pending = wait(futures.values(), timeout=DEADLINE_S)
            hung = [name for name, future in futures.items() if future in pending]
            postgres_proxy.resume()  # let any hung request go before the pool shuts down
            assert not hung, f"still waiting on the hung PostgreSQL: {hung}"
            for name, future in futures.items():
                response = future.result()
                if name == "readyz":  # its 503 is its report of checks, not a problem
                    assert response.status_code == 503, response.get_json()
                    assert response.get_json()["checks"]["database"]["ok"] is False
                    continue
                assert response.status_code == 503, (name, response.get_data(as_text=True))
                assert_unavailable(response, "database_unavailable")
    finally:
        postgres_proxy.resume()

    # Answering again: the closed connections were discarded, nothing was lost.
    assert app_stack.client.get("/v1/me", headers=reader).status_code == 200
    again = app_stack.client.get(f"{JOBS}/{job['id']}", headers=reader)
    assert again.status_code == 200 and again.get_json()["message"] == "What is a node?"


def test_a_slow_statement_is_cancelled_by_the_server_and_answered_503(app_stack: Stack) -> None:
    # The server enforces the same bound (statement_timeout): a slow but live server cancels
    # the statement, which is an outage too, and the connection stays usable.
    reader = app_stack.signup("slow")
    with app_stack.app.test_request_context("/v1/me", headers={"X-Request-ID": "slow-db-01"}):
        try:
            db().execute(text("SELECT pg_sleep(5)"))
        except Exception as exc:
            response = outage_problem(exc)
        else:
            raise AssertionError("pg_sleep(5) outlived a 1 s statement_timeout")
    assert response is not None
    assert response.status_code == 503
    assert response.get_json()["code"] == "database_unavailable"
    assert int(response.headers["Retry-After"]) >= 1
    assert app_stack.client.get("/v1/me", headers=reader).status_code == 200


def test_a_commit_the_server_never_answers_is_503_and_the_request_ends_cleanly(
    app_stack: Stack, postgres_proxy: TcpProxy
) -> None:
    app = app_stack.app
    try:
        with app.test_request_context("/v1/me", headers={"X-Request-ID": "hung-commit-01"}):
            db().execute(text("SELECT 1"))  # the request's transaction is open
            postgres_proxy.stall()
            response = app.process_response(Response("{}", status=200))
        # Leaving the context discarded the closed connection without waiting on the server.
    finally:
        postgres_proxy.resume()

    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "database_unavailable"
    assert response.headers["X-Request-ID"] == "hung-commit-01"
    assert int(response.headers["Retry-After"]) >= 1
