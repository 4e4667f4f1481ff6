"""The chat submit's prebuilt message is Celery's own, and the broker is read through kombu.

`ChatTaskPublisher` pushes a message built once for the installed Celery and kombu; these tests
send the same task through `send_task` on a real Redis and compare what lands in the broker,
so an upgrade that changes Celery's or kombu's format fails here instead of in production.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
import redis
from celery import Celery

from common.jobs.events import JobEvents, stream_key
from common.jobs.queue import (
    CHAT_ANSWER_TASK,
    CHAT_QUEUE,
    CHAT_REPEATS_QUEUE,
    chat_publisher,
    enqueue_chat_job,
    job_id_of,
    request_headers,
    task_id,
    waiting_job_ids,
)
from common.jobs.repeat_lane import repeat_hint_key, write_repeat_hint
from common.platform.logging_setup import REQUEST_ID_HEADER, request_id_bound
from tests.support.redis_server import RedisServer

# What differs from one message to the next: the task's id (and what repeats it) and the
# transport's per-message tags. Everything else must be byte for byte Celery's.
PER_MESSAGE = {
    ("headers", "id"),
    ("headers", "root_id"),
    ("properties", "correlation_id"),
    ("properties", "reply_to"),
    ("properties", "delivery_tag"),
}


def _pop_one(client: redis.Redis, queue: str = CHAT_QUEUE) -> dict[str, Any]:
    raw: Any = client.lrange(queue, 0, -1)
    assert len(raw) == 1, raw
    client.delete(queue)
    message: dict[str, Any] = json.loads(raw[0])
    return message


def _split(message: dict[str, Any]) -> tuple[dict[str, Any], bytes, dict[tuple[str, str], Any]]:
    """The message without its body and per-message values, the decoded body, those values."""
    varying = {(part, name): message[part].pop(name) for part, name in PER_MESSAGE}
    body = base64.b64decode(message.pop("body"))
    return message, body, varying


@pytest.mark.parametrize("queue", [CHAT_QUEUE, CHAT_REPEATS_QUEUE])
def test_the_prebuilt_chat_message_is_celerys_own(
    celery: Celery, broker: RedisServer, queue: str
) -> None:
    """In the chat queue (plain LPUSH) and in the fast lane (the routing script)."""
    client = redis.Redis.from_url(broker.url)
    job_id = uuid.uuid4()
    hint = None
    if queue == CHAT_REPEATS_QUEUE:
        hint = repeat_hint_key("What is a node?", None, None)
        write_repeat_hint(client, hint, 0, 60)
    with request_id_bound("req-1234"):
        celery.send_task(
            CHAT_ANSWER_TASK,
            args=[str(job_id)],
            queue=queue,
            task_id=task_id(job_id),
            headers=request_headers(),
        )
        celerys = _pop_one(client, queue)
        assert enqueue_chat_job(celery, job_id, hint) == queue
        ours = _pop_one(client, queue)

    expected, expected_body, _ = _split(celerys)
    actual, actual_body, varying = _split(ours)
    assert actual == expected
    assert actual_body == expected_body  # the serialized arguments, byte for byte
    assert json.dumps(actual, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert actual["headers"][REQUEST_ID_HEADER] == "req-1234"
    tid = varying[("headers", "id")]
    assert job_id_of(tid) == str(job_id)
    assert varying[("headers", "root_id")] == varying[("properties", "correlation_id")] == tid
    for name in ("reply_to", "delivery_tag"):
        uuid.UUID(varying[("properties", name)])


def test_the_prebuilt_message_has_no_request_id_outside_a_request(
    celery: Celery, broker: RedisServer
) -> None:
    client = redis.Redis.from_url(broker.url)
    job_id = uuid.uuid4()
    celery.send_task(CHAT_ANSWER_TASK, args=[str(job_id)], queue=CHAT_QUEUE)
    expected, _, _ = _split(_pop_one(client))
    client.lpush(CHAT_QUEUE, chat_publisher(celery).message(job_id))
    actual, _, _ = _split(_pop_one(client))
    assert actual == expected
    assert REQUEST_ID_HEADER not in actual["headers"]


def test_waiting_jobs_are_read_through_kombu_without_taking_them(
    celery: Celery, broker: RedisServer
) -> None:
    client = redis.Redis.from_url(broker.url)
    jobs = [uuid.uuid4() for _ in range(3)]
    for job_id in jobs[:2]:
        enqueue_chat_job(celery, job_id)
    celery.send_task(
        CHAT_ANSWER_TASK, args=[str(jobs[2])], queue=CHAT_QUEUE, task_id=task_id(jobs[2])
    )
    client.lpush(CHAT_QUEUE, b"not a kombu message")

    assert waiting_job_ids(celery, CHAT_QUEUE) == {str(job_id) for job_id in jobs}
    assert client.llen(CHAT_QUEUE) == 4  # read, not consumed

    fast = uuid.uuid4()
    hint = repeat_hint_key("What is a node?", None, None)
    write_repeat_hint(client, hint, 0, 60)
    assert enqueue_chat_job(celery, fast, hint) == CHAT_REPEATS_QUEUE
    assert waiting_job_ids(celery, CHAT_QUEUE) == {str(job_id) for job_id in jobs}
    both = waiting_job_ids(celery, CHAT_QUEUE, CHAT_REPEATS_QUEUE)
    assert both == {str(job_id) for job_id in [*jobs, fast]}


@pytest.mark.parametrize("first_turn", [True, False])
def test_the_queued_event_rides_in_the_send_and_a_refused_one_leaves_the_job_sent(
    celery: Celery, broker: RedisServer, first_turn: bool
) -> None:
    client = redis.Redis.from_url(broker.url, decode_responses=True)
    events = JobEvents(client, retention_seconds=300)
    hint = repeat_hint_key("What is a node?", None, None) if first_turn else None
    sent, refused = uuid.uuid4(), uuid.uuid4()
    assert chat_publisher(celery).shares_database(client)

    queued = events.entry(sent, "status", {"status": "queued"})
    assert enqueue_chat_job(celery, sent, hint, queued) == CHAT_QUEUE
    assert [(e.event, e.data) for e in events.read(sent)] == [("status", {"status": "queued"})]
    ttl: Any = client.ttl(stream_key(sent))
    assert 0 < ttl <= 300

    client.set(stream_key(refused), "not a stream")  # XADD fails: WRONGTYPE
    refused_event = events.entry(refused, "status", {})
    assert enqueue_chat_job(celery, refused, hint, refused_event) == CHAT_QUEUE
    assert waiting_job_ids(celery, CHAT_QUEUE) == {str(sent), str(refused)}
    other_database = redis.Redis.from_url(broker.url[:-1] + "1")
    assert chat_publisher(celery).shares_database(other_database) is False
