"""Streamed deltas go out in batches: fewer Redis round trips, the same answer for readers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from common.jobs.events import JobEvents, cancel_key
from common.platform.redis_client import make_redis
from tests.support.redis_server import RedisServer
from tests.support.sse import join_answer
from tests.support.stack import make_settings
from workers.job_stream import JobStream

WORDS = [f"word{n} " for n in range(40)]


@pytest.fixture
def events(redis_url: str, tmp_path: Path) -> Iterator[JobEvents]:
    """Event streams on the shared test Redis (jobs keep apart by their random ids)."""
    client = make_redis(make_settings(tmp_path, redis_url))
    yield JobEvents(client, retention_seconds=600)
    client.close()


def published(events: JobEvents, job_id: uuid.UUID) -> list[dict[str, object]]:
    """The job's events as the SSE helpers see them."""
    return [{"event": e.event, "data": e.data} for e in events.read(job_id)]


def test_deltas_within_the_interval_go_out_as_one_event(events: JobEvents) -> None:
    job_id = uuid.uuid4()
    stream = JobStream(events, job_id, attempt=1, flush_interval_s=60, flush_chars=10_000)
    stream.publish("status", {"status": "in_progress", "attempt": 1})

    cancelled = [stream.delta(word) for word in WORDS]
    stream.publish("done", {"status": "completed"})

    sent = published(events, job_id)
    assert not any(cancelled)
    assert [e["event"] for e in sent] == ["status", "delta", "done"]
    assert sent[1]["data"] == {"text": "".join(WORDS), "attempt": 1}
    assert join_answer(sent) == "".join(WORDS)


def test_a_batch_is_sent_once_it_holds_enough_characters(events: JobEvents) -> None:
    job_id = uuid.uuid4()
    stream = JobStream(events, job_id, attempt=2, flush_interval_s=60, flush_chars=50)

    for word in WORDS:
        stream.delta(word)
    before_the_end = published(events, job_id)
    stream.flush()

    sent = published(events, job_id)
    assert 1 < len(before_the_end) < len(WORDS)
    assert all(e["data"]["attempt"] == 2 for e in sent)  # type: ignore[index]
    assert join_answer(sent) == "".join(WORDS)


def test_a_batch_is_sent_once_the_interval_has_passed(events: JobEvents) -> None:
    job_id = uuid.uuid4()
    stream = JobStream(events, job_id, attempt=1, flush_interval_s=0.05, flush_chars=10_000)
    stream.delta("first ")  # the first delta goes out at once
    stream.delta("held ")
    assert [e["data"]["text"] for e in published(events, job_id)] == ["first "]  # type: ignore[index]

    time.sleep(0.06)
    stream.delta("then sent")

    assert join_answer(published(events, job_id)) == "first held then sent"


def test_interval_zero_sends_every_delta(events: JobEvents) -> None:
    job_id = uuid.uuid4()
    stream = JobStream(events, job_id, attempt=1, flush_interval_s=0, flush_chars=10_000)

    for word in WORDS[:5]:
        stream.delta(word)

    assert [e["data"]["text"] for e in published(events, job_id)] == WORDS[:5]  # type: ignore[index]


def test_held_text_goes_out_before_a_reset(events: JobEvents) -> None:
    job_id = uuid.uuid4()
    stream = JobStream(events, job_id, attempt=1, flush_interval_s=60, flush_chars=10_000)
    stream.publish("status", {"status": "in_progress", "attempt": 1})
    stream.delta("partial text of a call that failed ")
    stream.publish("reset", {"attempt": 1, "reason": "the model call was retried"})
    stream.delta("the answer")
    stream.flush()

    sent = published(events, job_id)
    assert [e["event"] for e in sent] == ["status", "delta", "reset", "delta"]
    assert join_answer(sent) == "the answer"


def test_the_flush_reads_the_cancel_flag(events: JobEvents) -> None:
    job_id = uuid.uuid4()
    stream = JobStream(events, job_id, attempt=1, flush_interval_s=0, flush_chars=10_000)
    assert stream.delta("one ") is False

    events.request_cancel(job_id)

    assert stream.delta("two ") is True
    stream.drain(1)

    # Nothing follows the cancellation: the API's `done` stays the stream's last event.
    assert [e["data"]["text"] for e in published(events, job_id)] == ["one "]  # type: ignore[index]
    events.client.delete(cancel_key(job_id))


def test_events_wait_through_a_redis_outage_and_go_out_in_order(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    client = redis.Redis.from_url(server.url, decode_responses=True, socket_timeout=1)
    events = JobEvents(client, retention_seconds=600)
    job_id = uuid.uuid4()
    stream = JobStream(events, job_id, attempt=1, flush_interval_s=0, flush_chars=10_000)
    try:
        stream.publish("status", {"status": "in_progress", "attempt": 1})
        server.stop()
        assert stream.delta("while ") is False  # unknown while Redis is away: not cancelled
        stream.delta("away ")
        server.start()
        stream.delta("and back")
        stream.publish("done", {"status": "completed"})

        sent = published(events, job_id)
        assert sent[0]["event"] == "status" and sent[-1]["event"] == "done"
        assert join_answer(sent) == "while away and back"
    finally:
        client.close()
        server.stop()
