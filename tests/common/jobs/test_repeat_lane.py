"""The submit's route: one script sends a job to the fast lane only when its hint is current.

Real Redis; the script runs as the API runs it (`enqueue_chat_job` with the hint's key).
"""

from __future__ import annotations

import uuid

import redis
from celery import Celery

from common.jobs.queue import (
    CHAT_QUEUE,
    CHAT_REPEATS_QUEUE,
    enqueue_chat_job,
    pool_queues,
    waiting_job_ids,
    with_fast_lane,
)
from common.jobs.repeat_lane import INDEX_VERSION_KEY, repeat_hint_key, write_repeat_hint
from tests.support.redis_server import RedisServer


def _where(celery: Celery, job_id: uuid.UUID) -> str:
    """The one queue holding the job's message."""
    found = [
        q for q in (CHAT_QUEUE, CHAT_REPEATS_QUEUE) if str(job_id) in waiting_job_ids(celery, q)
    ]
    assert len(found) == 1, found
    return found[0]


def test_a_question_without_a_hint_goes_to_the_chat_queue(celery: Celery) -> None:
    job_id = uuid.uuid4()
    hint = repeat_hint_key("What is a node?", None, None)
    assert enqueue_chat_job(celery, job_id, hint) == CHAT_QUEUE
    assert _where(celery, job_id) == CHAT_QUEUE


def test_a_repeat_whose_answer_is_stored_goes_to_the_fast_lane(
    celery: Celery, broker: RedisServer
) -> None:
    client = redis.Redis.from_url(broker.url)
    client.set(INDEX_VERSION_KEY, 3)
    write_repeat_hint(client, repeat_hint_key("What is a node?", None, None), 3, 60)

    same_words = uuid.uuid4()
    hint = repeat_hint_key("  what IS a node ", None, None)  # case, spaces, punctuation
    assert enqueue_chat_job(celery, same_words, hint) == CHAT_REPEATS_QUEUE
    assert _where(celery, same_words) == CHAT_REPEATS_QUEUE

    other = uuid.uuid4()
    hint = repeat_hint_key("What is a node handle?", None, None)
    assert enqueue_chat_job(celery, other, hint) == CHAT_QUEUE

    about_a_selection = uuid.uuid4()
    hint = repeat_hint_key("What is a node?", "a node is", "/ch1")
    assert enqueue_chat_job(celery, about_a_selection, hint) == CHAT_QUEUE

    without_hint = uuid.uuid4()  # a follow-up or a re-send: no hint, the chat queue
    assert enqueue_chat_job(celery, without_hint) == CHAT_QUEUE


def test_a_hint_from_an_older_index_version_does_not_route(
    celery: Celery, broker: RedisServer
) -> None:
    client = redis.Redis.from_url(broker.url)
    hint = repeat_hint_key("What is a node?", None, None)
    write_repeat_hint(client, hint, 0, 60)  # no version yet reads as 0
    assert enqueue_chat_job(celery, uuid.uuid4(), hint) == CHAT_REPEATS_QUEUE

    client.incr(INDEX_VERSION_KEY)  # an ingest started
    assert enqueue_chat_job(celery, uuid.uuid4(), hint) == CHAT_QUEUE


def test_the_fast_lanes_message_names_its_queue_for_a_redelivery(
    celery: Celery, broker: RedisServer
) -> None:
    """kombu puts an unacknowledged message back in the queue its routing key names."""
    client = redis.Redis.from_url(broker.url)
    hint = repeat_hint_key("What is a node?", None, None)
    write_repeat_hint(client, hint, 0, 60)
    enqueue_chat_job(celery, uuid.uuid4(), hint)
    with celery.connection_or_acquire() as connection, connection.channel() as channel:
        message = channel._get(CHAT_REPEATS_QUEUE)
    assert message["properties"]["delivery_info"]["routing_key"] == CHAT_REPEATS_QUEUE


def test_a_chat_worker_consumes_the_fast_lane_too() -> None:
    assert with_fast_lane(["chat"]) == ["chat", "chat-repeats"]
    assert with_fast_lane(["ingest", "chat", "reprocess"]) == [
        "ingest",
        "chat",
        "chat-repeats",
        "reprocess",
    ]
    assert with_fast_lane(["ingest"]) == ["ingest"]
    assert with_fast_lane(["chat-repeats", "chat"]) == ["chat-repeats", "chat"]


def test_a_thread_pool_leaves_the_fast_lane_to_its_own_threads() -> None:
    assert pool_queues(["chat", "ingest"], "threads", 2) == ["chat", "ingest"]
    assert pool_queues(["chat"], "threads", 0) == ["chat", "chat-repeats"]
    assert pool_queues(["chat"], "prefork", 2) == ["chat", "chat-repeats"]
    assert pool_queues(["chat-repeats"], "threads", 2) == ["chat-repeats"]
    assert pool_queues(["ingest"], "threads", 2) == ["ingest"]
