"""Per-job event streams in a real Redis: order, resumption, blocking reads, cancel flags, TTL."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import cast

import pytest
import redis

from common.jobs.events import JobEvents, cancel_key, stream_key
from common.platform.redis_client import make_redis
from tests.support.stack import make_settings


def ttl(redis_db: redis.Redis, key: str) -> int:
    """Seconds the key has left (-1: no expiry, -2: missing)."""
    return cast(int, redis_db.ttl(key))


@pytest.fixture
def redis_db(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[redis.Redis]:
    """A redis_db like the app's (decoded responses) on the shared test Redis."""
    made = make_redis(make_settings(tmp_path_factory.mktemp("events"), redis_url))
    yield made
    made.close()


@pytest.fixture
def events(redis_db: redis.Redis) -> JobEvents:
    """Event streams kept for ten minutes."""
    return JobEvents(redis_db, retention_seconds=600)


def test_events_are_read_back_in_publish_order(events: JobEvents) -> None:
    job_id = uuid.uuid4()
    ids = [
        events.publish(job_id, "status", {"status": "in_progress"}),
        events.publish(job_id, "delta", {"text": "A node "}),
        events.publish(job_id, "delta", {"text": "is a process."}),
        events.publish(job_id, "done", {"status": "completed"}),
    ]

    read = events.read(job_id)

    assert [e.id for e in read] == ids
    assert [e.event for e in read] == ["status", "delta", "delta", "done"]
    assert "".join(e.data["text"] for e in read if e.event == "delta") == "A node is a process."
    assert read[1].to_sse() == f'id: {ids[1]}\nevent: delta\ndata: {{"text": "A node "}}\n\n'


def test_after_resumes_past_the_given_event(events: JobEvents) -> None:
    job_id = uuid.uuid4()
    ids = [events.publish(job_id, "delta", {"text": str(i)}) for i in range(5)]

    resumed = events.read(job_id, after=ids[2])

    assert [e.data["text"] for e in resumed] == ["3", "4"]
    assert events.read(job_id, after=ids[-1]) == []
    assert [e.id for e in events.read(job_id, count=2)] == ids[:2]


def test_jobs_do_not_see_each_others_events(events: JobEvents) -> None:
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    events.publish(theirs, "delta", {"text": "not yours"})

    assert events.read(mine) == []
    assert events.exists(mine) is False and events.exists(theirs) is True


def test_a_blocking_read_times_out_empty(events: JobEvents) -> None:
    job_id = uuid.uuid4()
    last = events.publish(job_id, "status", {"status": "queued"})

    started = time.monotonic()
    read = events.read(job_id, after=last, block_ms=200)
    waited = time.monotonic() - started

    assert read == []
    assert 0.15 <= waited < 2.0


def test_a_blocking_read_wakes_on_a_new_event(events: JobEvents) -> None:
    job_id = uuid.uuid4()
    timer = threading.Timer(0.2, events.publish, (job_id, "done", {"status": "completed"}))
    timer.start()
    try:
        started = time.monotonic()
        read = events.read(job_id, after="0-0", block_ms=5000)
        waited = time.monotonic() - started
    finally:
        timer.join()

    assert [e.event for e in read] == ["done"]
    assert waited < 4.0


def test_cancel_is_flagged_per_job_with_a_ttl(events: JobEvents, redis_db: redis.Redis) -> None:
    job_id, other = uuid.uuid4(), uuid.uuid4()
    assert events.cancel_requested(job_id) is False

    events.request_cancel(job_id)

    assert events.cancel_requested(job_id) is True
    assert events.cancel_requested(other) is False
    assert 0 < ttl(redis_db, cancel_key(job_id)) <= 600


def test_the_stream_expires_after_the_retention_period(
    events: JobEvents, redis_db: redis.Redis
) -> None:
    job_id = uuid.uuid4()
    events.publish(job_id, "status", {"status": "in_progress"})
    redis_db.expire(stream_key(job_id), 5)

    events.publish(job_id, "delta", {"text": "more"})

    # Every publish renews the retention period.
    assert 590 <= ttl(redis_db, stream_key(job_id)) <= 600
    short = JobEvents(redis_db, retention_seconds=1)
    short.publish(job_id, "done", {"status": "completed"})
    deadline = time.monotonic() + 5
    while events.exists(job_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert events.exists(job_id) is False


def test_a_restart_leaves_only_the_new_opening_and_clears_the_cancel_flag(
    events: JobEvents, redis_db: redis.Redis
) -> None:
    job_id = uuid.uuid4()
    events.publish(job_id, "delta", {"text": "old", "attempt": 1})
    old_end = events.publish(job_id, "error", {"code": "llm_unavailable"})
    events.request_cancel(job_id)

    opened = events.restart(job_id, {"status": "queued", "reason": "retried by an operator"})

    [event] = events.read(job_id)
    assert (event.id, event.event, event.data["reason"]) == (
        opened,
        "status",
        "retried by an operator",
    )
    assert [e.id for e in events.read(job_id, old_end)] == [opened]  # ids keep increasing
    assert not events.cancel_requested(job_id)
    assert 0 < ttl(redis_db, stream_key(job_id)) <= 600
