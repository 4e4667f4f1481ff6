"""Stream slots in a real Redis: shared by processes, lapsing when a process dies; the web pool."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
import redis

from bench.support import free_port
from common.platform.redis_client import make_redis
from tests.support.stack import Stack, make_settings
from tests.web.assertions import assert_problem
from web.stream_slots import Scope, StreamSlots, TooManyStreams


def scopes(limit: int) -> tuple[Scope, ...]:
    """A user scope and a job scope of their own, `limit` each."""
    user, job = uuid.uuid4(), uuid.uuid4()
    return (
        Scope("user", f"test:streams:user:{user}", limit),
        Scope("job", f"test:streams:job:{user}:{job}", limit),
    )


@pytest.fixture
def redis_db(redis_url: str) -> redis.Redis:
    """A plain redis_db of the session's Redis."""
    return redis.Redis.from_url(redis_url, decode_responses=True)


def test_slots_are_shared_by_processes_and_given_back(redis_db: redis.Redis) -> None:
    here, there = StreamSlots(redis_db, 60), StreamSlots(redis_db, 60)  # two web processes
    shared = scopes(2)
    first = here.acquire(shared)
    there.acquire(shared)

    with pytest.raises(TooManyStreams) as refused:
        there.acquire(shared)
    assert refused.value.retry_after > 0 and refused.value.extensions["scope"] == "user"

    first.release()
    first.release()  # a second release gives back nothing more
    there.acquire(shared)
    with pytest.raises(TooManyStreams):
        here.acquire(shared)


def test_the_slots_of_a_dead_process_lapse_unless_renewed(redis_db: redis.Redis) -> None:
    dead, alive, other = (
        StreamSlots(redis_db, 1),
        StreamSlots(redis_db, 1),
        StreamSlots(redis_db, 1),
    )
    crashed, renewed = scopes(1), scopes(1)
    dead.acquire(crashed)  # never released: its process died
    kept = alive.acquire(renewed)
    with pytest.raises(TooManyStreams):
        other.acquire(crashed)

    deadline = time.monotonic() + 10
    while True:
        kept.renew()
        try:
            other.acquire(crashed)
            break
        except TooManyStreams:
            assert time.monotonic() < deadline, "the dead process's slot never lapsed"
            time.sleep(0.2)
    with pytest.raises(TooManyStreams):
        other.acquire(renewed)  # renewed all along: still held


def test_without_redis_this_process_still_counts() -> None:
    down = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    slots = StreamSlots(down, 60)
    shared = scopes(2)
    held = [slots.acquire(shared), slots.acquire(shared)]
    with pytest.raises(TooManyStreams):
        slots.acquire(shared)
    held[0].release()
    slots.acquire(shared)


def test_the_web_pool_waits_for_a_free_connection(tmp_path: Path, redis_url: str) -> None:
    settings = make_settings(tmp_path, redis_url, redis_pool_size=2)
    redis_db = make_redis(settings, pool_wait_seconds=settings.redis_pool_wait_seconds)
    pool = redis_db.connection_pool
    busy = [pool.get_connection(), pool.get_connection()]  # every connection in use
    threading.Timer(0.3, pool.release, args=(busy[0],)).start()
    try:
        assert redis_db.ping()  # waited for the released connection instead of failing
    finally:
        pool.release(busy[1])
        redis_db.close()


def test_the_web_pool_gives_up_after_its_wait(tmp_path: Path, redis_url: str) -> None:
    settings = make_settings(tmp_path, redis_url, redis_pool_size=2, redis_pool_wait_seconds=0.2)
    redis_db = make_redis(settings, pool_wait_seconds=settings.redis_pool_wait_seconds)
    pool = redis_db.connection_pool
    busy = [pool.get_connection(), pool.get_connection()]
    try:
        with pytest.raises(redis.ConnectionError):
            redis_db.ping()  # a 503 for the request, after a bounded wait
    finally:
        for connection in busy:
            pool.release(connection)
        redis_db.close()


def test_a_closed_stream_gives_its_slot_back_even_unread(idle_stack: Stack) -> None:
    headers = idle_stack.signup()
    job = idle_stack.submit(headers, message="What is a launch file?")
    path = f"/v1/chat/jobs/{job['id']}/events"
    for _ in range(5):  # more than the job's share of 3, one at a time
        response = idle_stack.client.get(path, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        response.close()
    held = [idle_stack.client.get(path, headers=headers) for _ in range(3)]
    refused = idle_stack.client.get(path, headers=headers)
    for response in reversed(held):  # each pushed its request context: pop them in order
        response.close()
    body = assert_problem(refused, 429, "too_many_streams")
    assert body["scope"] == "job" and int(refused.headers["Retry-After"]) > 0
