"""A hung Redis (SIGSTOP: connections open, nothing answers) is an outage, never a wait.

Every route answers 503 problem+json with Retry-After instead of holding the request until Redis
thaws; the requests run at once, each in its own thread, and the test fails (rather than hangs)
if one has not answered by a generous deadline. Without socket time-outs they never answer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import pytest
from werkzeug.test import TestResponse

from tests.support.redis_server import RedisServer
from tests.support.stack import TEST_PASSWORD, Stack, make_settings, start_stack
from tests.web.assertions import assert_unavailable

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
JOBS = "/v1/chat/jobs"
DEADLINE_S = 60.0  # fail instead of hanging; an answer takes a few socket time-outs at most


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of this test's own, to freeze."""
    server = RedisServer(tmp_path_factory.mktemp("hung-redis"), appendonly=True).start()
    yield server
    server.stop()


@pytest.fixture
def app_stack(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[Stack]:
    """The API on SQLite and the private Redis, with no worker (jobs stay queued)."""
    running = start_stack(
        make_settings(tmp_path_factory.mktemp("hung-redis-app"), redis_server.url),
        with_worker=False,
    )
    yield running
    running.stop()


def test_every_route_answers_503_while_redis_is_frozen(
    app_stack: Stack, redis_server: RedisServer
) -> None:
    email = f"frozen-{time.monotonic_ns()}@example.com"
    tokens = app_stack.client.post(
        "/v1/auth/signup", json={"email": email, "password": TEST_PASSWORD}
    ).get_json()
    reader = {"Authorization": f"Bearer {tokens['access_token']}"}
    refresh = {"Authorization": f"Bearer {tokens['refresh_token']}"}
    job = app_stack.submit(reader, message="What is a node?")
    login = {"email": email, "password": TEST_PASSWORD}
    calls: dict[str, tuple[str, str, Any, dict[str, str]]] = {
        "me": ("get", "/v1/me", None, reader),
        "submit": ("post", JOBS, {"message": "Is Redis up?"}, reader),
        "read": ("get", f"{JOBS}/{job['id']}", None, reader),
        "long-poll": ("get", f"{JOBS}/{job['id']}?wait=2", None, reader),
        "events": ("get", f"{JOBS}/{job['id']}/events", None, reader),
        "cancel": ("post", f"{JOBS}/{job['id']}/cancel", None, reader),
        "search": ("post", "/v1/search", {"query": "nodes"}, reader),
        "conversations": ("get", "/v1/conversations", None, reader),
        "refresh": ("post", "/v1/auth/refresh", None, refresh),
        "login": ("post", "/v1/auth/login", login, {}),
        "guest": ("post", "/v1/auth/guest", None, {}),
        "metrics": ("get", "/metrics", None, reader),
    }

    def call(method: str, path: str, body: Any, headers: dict[str, str]) -> TestResponse:
        response: TestResponse = getattr(app_stack.client, method)(path, json=body, headers=headers)
        return response

    redis_server.pause()
    try:
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            futures = {name: pool.submit(call, *args) for name, args in calls.items()}
            _done, pending = wait(futures.values(), timeout=DEADLINE_S)
            hung = [name for name, future in futures.items() if future in pending]
            redis_server.resume()  # let any hung request go before the pool shuts down
            assert not hung, f"still waiting on the frozen Redis: {hung}"
            for name, future in futures.items():
                response = future.result()
                assert response.status_code == 503, (name, response.get_data(as_text=True))
                assert_unavailable(response, "redis_unavailable")
    finally:
        redis_server.resume()

    # Thawed: the same reader is served again.
    assert app_stack.client.get("/v1/me", headers=reader).status_code == 200
