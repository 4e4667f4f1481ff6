"""The stream hub: one Redis reader that wakes many waiting requests, under plain threads."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from common.jobs.events import JobEvents
from tests.support.redis_server import RedisServer
from tests.support.stack import REPO_ROOT, Stack
from tests.web.assertions import assert_problem
from web.stream_hub import StreamHub

LONG = 30.0  # seconds a read may wait: only a broken hub would ever wait this long


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[redis.Redis]:
    """A pooled redis_db, as the web process's shared one."""
    pooled = redis.Redis.from_url(redis_url, decode_responses=True)
    yield pooled
    pooled.close()


@pytest.fixture
def hub(redis_url: str, redis_db: redis.Redis) -> Iterator[StreamHub]:
    """A hub whose XREAD blocks for a minute: new waiters must wake it, not wait it out."""
    running = StreamHub.from_url(redis_url, redis_db, block_ms=60_000)
    yield running
    running.close()


def _read_in_thread(hub: StreamHub, job_id: uuid.UUID, after: str) -> tuple[threading.Thread, list]:
    found: list = []
    thread = threading.Thread(target=lambda: found.extend(hub.read(job_id, after, LONG)))
    thread.start()
    return thread, found


def _wait_for_waiters(hub: StreamHub, count: int) -> None:
    while hub.watched() < count:
        threading.Event().wait(0.01)


def test_a_waiter_gets_events_published_after_it_began(
    hub: StreamHub, redis_db: redis.Redis
) -> None:
    events = JobEvents(redis_db)
    first, second = uuid.uuid4(), uuid.uuid4()
    waiting_first, got_first = _read_in_thread(hub, first, "0-0")
    _wait_for_waiters(hub, 1)
    # A second stream joins while the reader blocks on the first only.
    waiting_second, got_second = _read_in_thread(hub, second, "0-0")
    _wait_for_waiters(hub, 2)

    published = events.publish(second, "status", {"status": "queued"})
    waiting_second.join(LONG)
    events.publish(first, "delta", {"text": "hi"})
    waiting_first.join(LONG)

    assert [(e.id, e.event) for e in got_second] == [(published, "status")]
    assert [(e.event, e.data) for e in got_first] == [("delta", {"text": "hi"})]
    assert hub.watched() == 0


def test_waiters_on_one_stream_each_get_what_follows_their_own_id(
    hub: StreamHub, redis_db: redis.Redis
) -> None:
    events, job_id = JobEvents(redis_db), uuid.uuid4()
    ids = [events.publish(job_id, "delta", {"n": n}) for n in range(3)]

    assert [e.data["n"] for e in hub.read(job_id, "0", LONG)] == [0, 1, 2]
    assert [e.data["n"] for e in hub.read(job_id, ids[0], LONG)] == [1, 2]
    waiting, found = _read_in_thread(hub, job_id, ids[2])
    _wait_for_waiters(hub, 1)
    events.publish(job_id, "done", {"status": "completed"})
    waiting.join(LONG)
    assert [e.event for e in found] == ["done"]


def test_a_read_with_nothing_new_times_out_and_leaves(hub: StreamHub) -> None:
    assert hub.read(uuid.uuid4(), "0-0", 0.2) == []
    assert hub.watched() == 0


def test_many_waiters_share_the_reader(hub: StreamHub, redis_db: redis.Redis) -> None:
    events = JobEvents(redis_db)
    jobs = [uuid.uuid4() for _ in range(50)]
    readers = [_read_in_thread(hub, job_id, "0-0") for job_id in jobs]
    _wait_for_waiters(hub, len(jobs))
    for job_id in jobs:
        events.publish(job_id, "status", {"job": str(job_id)})
    for thread, _found in readers:
        thread.join(LONG)
    assert [found[0].data["job"] for _thread, found in readers] == [str(j) for j in jobs]


def test_under_gevent_a_fan_out_yields_and_every_reader_gets_every_event_in_order(
    redis_url: str,
) -> None:
    # gunicorn's gevent worker: each wake-up runs the request's greenlet from the event loop,
    # so a hub that wakes hundreds at once keeps every other request (a /healthz) waiting.
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.gevent_hub_fanout", redis_url],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])

    # A greenlet spawned by the first waiter woken ran while most were still to be woken
    # (waking all at once, it ran after 250 or 500 of the 500).
    assert result["probe_before"] < result["waiters"] // 4, result
    assert result["streams"] and all(result["streams"]), result


def test_waiters_learn_of_a_redis_outage_and_the_hub_recovers(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis").start()
    redis_db = redis.Redis.from_url(server.url, decode_responses=True)
    hub = StreamHub.from_url(server.url, redis_db, block_ms=60_000)
    try:
        errors: list[BaseException] = []

        def read() -> None:
            try:
                hub.read(uuid.uuid4(), "0-0", LONG)
            except redis.ConnectionError as exc:
                errors.append(exc)

        waiting = [threading.Thread(target=read) for _ in range(3)]
        for thread in waiting:
            thread.start()
        _wait_for_waiters(hub, 3)
        server.stop()
        for thread in waiting:
            thread.join(LONG)
        assert len(errors) == 3 and len({id(e) for e in errors}) == 3
        with pytest.raises(redis.ConnectionError):
            hub.read(uuid.uuid4(), "0-0", LONG)  # the wake-up cannot be sent: at once

        server.start()
        job_id = uuid.uuid4()
        JobEvents(redis_db).publish(job_id, "status", {"status": "queued"})
        assert [e.event for e in hub.read(job_id, "0-0", LONG)] == ["status"]
    finally:
        hub.close()
        redis_db.close()
        server.stop()


@pytest.mark.parametrize(
    ("header", "query"),
    [("garbage", None), ("1-2-3", None), ("$", None), (None, "abc"), ("-1", None)],
)
def test_a_garbage_resume_point_is_a_400_before_the_stream(
    idle_stack: Stack, header: str | None, query: str | None
) -> None:
    headers = idle_stack.signup()
    job = idle_stack.submit(headers, message="What is a node?")
    if header is not None:
        headers = {**headers, "Last-Event-ID": header}
    path = f"/v1/chat/jobs/{job['id']}/events" + (f"?starting_after={query}" if query else "")

    response = idle_stack.client.get(path, headers=headers)

    assert_problem(response, 400, "invalid_event_id")


def test_valid_resume_points_open_the_stream(idle_stack: Stack) -> None:
    headers = idle_stack.signup()
    job = idle_stack.submit(headers, message="What is a topic?")
    idle_stack.client.post(f"/v1/chat/jobs/{job['id']}/cancel", headers=headers)
    for after in ("0", "0-0", "1712000000000-3"):
        response = idle_stack.client.get(
            f"/v1/chat/jobs/{job['id']}/events", headers={**headers, "Last-Event-ID": after}
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        response.close()


def test_long_polls_hold_no_database_connection_while_they_wait(idle_stack: Stack) -> None:
    # Three readers with seven each: more than the pool's connections, within each one's share.
    readers = [idle_stack.signup() for _ in range(3)]
    jobs = [
        (headers, idle_stack.submit(headers, message=f"question {n}")["id"])
        for headers in readers
        for n in range(7)
    ]
    res = idle_stack.resources
    statuses: list[int] = []

    def poll(headers: dict[str, str], job_id: str) -> None:
        response = idle_stack.client.get(f"/v1/chat/jobs/{job_id}?wait=5", headers=headers)
        statuses.append(response.status_code)

    polls = [threading.Thread(target=poll, args=job) for job in jobs]
    for thread in polls:
        thread.start()
    # More waiters than the pool has connections (5 + 10 overflow): all wait at once.
    _wait_for_waiters(res.hub, len(jobs))
    checked_out = res.engine.pool.checkedout()  # type: ignore[attr-defined]
    for thread in polls:
        thread.join(LONG)

    assert checked_out == 0
    assert statuses == [200] * len(jobs)
