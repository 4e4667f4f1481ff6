"""Redis away: routes that need it answer 503 with Retry-After at once, the rest keep working."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.redis_server import RedisServer
from tests.support.stack import TEST_PASSWORD, Stack, make_settings, start_stack
from tests.web.assertions import assert_unavailable

pytestmark = pytest.mark.slow  # real-process fault runs: left out of `make test-fast`

JOBS = "/v1/chat/jobs"
QUICKLY = 5.0  # seconds: an outage is answered, never waited out


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of this module's own, to stop and start (persisting, as in production:
    sign-in sessions live in Redis and must outlive a restart)."""
    server = RedisServer(tmp_path_factory.mktemp("redis-down"), appendonly=True).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def app_stack(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[Stack]:
    """The API on SQLite and the private Redis, with no worker (jobs stay queued)."""
    running = start_stack(
        make_settings(tmp_path_factory.mktemp("redis-down-app"), redis_server.url),
        with_worker=False,
    )
    yield running
    running.stop()


@dataclass
class World:
    """What a reader and an admin made while Redis was up."""

    reader: dict[str, str]
    refresh: dict[str, str]
    admin: dict[str, str]
    email: str
    queued: dict[str, Any]
    cancelled: dict[str, Any]


@pytest.fixture
def world(app_stack: Stack, redis_server: RedisServer) -> World:
    """A fresh reader with one queued and one cancelled job, made while Redis is up."""
    redis_server.start()  # a test may have left it stopped
    email = f"outage-{time.monotonic_ns()}@example.com"
    tokens = app_stack.client.post(
        "/v1/auth/signup", json={"email": email, "password": TEST_PASSWORD}
    ).get_json()
    reader = {"Authorization": f"Bearer {tokens['access_token']}"}
    queued = app_stack.submit(reader, message="What is a node?")
    cancelled = app_stack.submit(reader, message="What is a topic?")
    response = app_stack.client.post(f"{JOBS}/{cancelled['id']}/cancel", headers=reader)
    assert response.status_code == 200
    return World(
        reader=reader,
        refresh={"Authorization": f"Bearer {tokens['refresh_token']}"},
        admin=app_stack.admin(),
        email=email,
        queued=queued,
        cancelled=response.get_json(),
    )


@pytest.fixture
def redis_down(world: World, redis_server: RedisServer) -> Iterator[None]:
    """Redis stopped for the test (after `world` was made), started again after it."""
    redis_server.stop()
    yield
    redis_server.start()


def _timed(call: Any) -> Any:
    started = time.monotonic()
    response = call()
    assert time.monotonic() - started < QUICKLY
    return response


# (name, method, path, body, headers-key, expected code). Every token check asks Redis whether
# the token was revoked and fails closed, so each authenticated route is redis_unavailable
# (submit and ingest said service_unavailable from the broker before the token check did).
NEEDS_REDIS = [
    ("submit", "post", JOBS, {"message": "Is Redis up?"}, "reader", "redis_unavailable"),
    ("read", "get", f"{JOBS}/{{queued}}", None, "reader", "redis_unavailable"),
    ("long-poll", "get", f"{JOBS}/{{queued}}?wait=2", None, "reader", "redis_unavailable"),
    ("events", "get", f"{JOBS}/{{queued}}/events", None, "reader", "redis_unavailable"),
    ("cancel", "post", f"{JOBS}/{{queued}}/cancel", None, "reader", "redis_unavailable"),
    ("search", "post", "/v1/search", {"query": "nodes"}, "reader", "redis_unavailable"),
    ("ingest", "post", "/v1/admin/ingest", {"path": "/tmp"}, "admin", "redis_unavailable"),
    ("ingest-list", "get", "/v1/admin/ingest", None, "admin", "redis_unavailable"),
    ("metrics", "get", "/metrics", None, "reader", "redis_unavailable"),
    ("me", "get", "/v1/me", None, "reader", "redis_unavailable"),
    ("conversations", "get", "/v1/conversations", None, "reader", "redis_unavailable"),
    ("refresh", "post", "/v1/auth/refresh", None, "refresh", "redis_unavailable"),
    ("logout", "post", "/v1/auth/logout", None, "reader", "redis_unavailable"),
    ("login", "post", "/v1/auth/login", "login", "nobody", "redis_unavailable"),
    ("signup", "post", "/v1/auth/signup", "new-user", "nobody", "redis_unavailable"),
    ("guest", "post", "/v1/auth/guest", None, "nobody", "redis_unavailable"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "who", "code"),
    [case[1:] for case in NEEDS_REDIS],
    ids=[case[0] for case in NEEDS_REDIS],
)
@pytest.mark.usefixtures("redis_down")
def test_routes_that_need_redis_are_503_with_retry_after(
    app_stack: Stack, world: World, method: str, path: str, body: Any, who: str, code: str
) -> None:
    url = path.format(queued=world.queued["id"])
    if body == "login":
        body = {"email": world.email, "password": TEST_PASSWORD}
    elif body == "new-user":
        body = {"email": f"new-{time.monotonic_ns()}@example.com", "password": TEST_PASSWORD}
    who_headers = {} if who == "nobody" else getattr(world, who)
    headers = {**who_headers, "X-Request-ID": "outage-request-0001"}

    response = _timed(lambda: getattr(app_stack.client, method)(url, json=body, headers=headers))

    problem = assert_unavailable(response, code)
    assert problem["request_id"] == "outage-request-0001"


def test_resuming_a_finished_jobs_stream_is_503_without_redis(
    app_stack: Stack, world: World, redis_server: RedisServer
) -> None:
    # Replaying a finished job from its row would repeat events the client already has.
    redis_server.stop()
    headers = {**world.reader, "Last-Event-ID": "1-0"}

    response = _timed(
        lambda: app_stack.client.get(f"{JOBS}/{world.cancelled['id']}/events", headers=headers)
    )

    assert_unavailable(response, "redis_unavailable")


@pytest.mark.usefixtures("redis_down")
def test_routes_without_a_token_or_redis_keep_working(app_stack: Stack) -> None:
    # Token checks need Redis (revocation), so only the unauthenticated routes remain.
    assert _timed(lambda: app_stack.client.get("/healthz")).status_code == 200


def test_a_sign_up_during_the_outage_leaves_no_account(
    app_stack: Stack, world: World, redis_server: RedisServer
) -> None:
    new_user = {"email": f"lost-{time.monotonic_ns()}@example.com", "password": TEST_PASSWORD}
    redis_server.stop()
    assert_unavailable(app_stack.client.post("/v1/auth/signup", json=new_user), "redis_unavailable")
    redis_server.start()

    assert app_stack.client.post("/v1/auth/signup", json=new_user).status_code == 201


def test_everything_works_again_once_redis_is_back(
    app_stack: Stack, world: World, redis_server: RedisServer
) -> None:
    redis_server.stop()
    down = app_stack.client.get(f"{JOBS}/{world.queued['id']}?wait=1", headers=world.reader)
    assert_unavailable(down, "redis_unavailable")

    redis_server.start()

    # Redis persists (AOF), so sessions made before the outage still work after it.
    again = app_stack.client.get(f"{JOBS}/{world.queued['id']}?wait=1", headers=world.reader)
    assert again.status_code == 200 and again.get_json()["status"] == "queued"
    assert app_stack.client.post("/v1/auth/refresh", headers=world.refresh).status_code == 200
    assert (
        app_stack.client.post(JOBS, json={"message": "Back?"}, headers=world.reader).status_code
        == 202
    )


def test_a_stream_cut_by_an_outage_ends_with_an_error_frame_and_no_id(
    app_stack: Stack, world: World, redis_server: RedisServer
) -> None:
    job_id = world.queued["id"]
    published = app_stack.resources.events.publish(job_id, "status", {"status": "queued"})
    response = app_stack.client.get(f"{JOBS}/{job_id}/events", headers=world.reader, buffered=False)
    assert response.status_code == 200
    chunks = (c.decode() if isinstance(c, bytes) else c for c in response.response)
    assert next(chunks).startswith("retry:")
    seen = [next(chunks) for _ in range(2)]  # the submit's status event and ours
    assert seen[-1].startswith(f"id: {published}\nevent: status\n")
    # The stream now blocks reading Redis for the next event; Redis goes away meanwhile.
    threading.Timer(0.5, redis_server.stop).start()

    rest = _timed(lambda: list(chunks))

    response.close()
    assert len(rest) == 1, rest  # whole frames only, and nothing after the error
    fields = dict(line.split(": ", 1) for line in rest[0].removesuffix("\n\n").splitlines())
    assert "id" not in fields  # so a reconnect resumes from the last real event
    assert fields["event"] == "error"
    assert int(fields["retry"]) >= 1000
    data = json.loads(fields["data"])
    assert data["code"] == "redis_unavailable" and data["retry"] >= 1
