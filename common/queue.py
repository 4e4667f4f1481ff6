"""The Celery application shared by web (to send) and workers (to run): queues and reliability."""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

import redis
from celery import Celery
from kombu import Exchange, Queue

from common.redis_client import resolve_redis_url
from common.retries import retry_policy
from common.settings import Settings

CHAT_QUEUE = "chat"
INGEST_QUEUE = "ingest"
REPROCESS_QUEUE = "reprocess"
ALL_QUEUES = (CHAT_QUEUE, INGEST_QUEUE, REPROCESS_QUEUE)

CHAT_ANSWER_TASK = "chat.answer"
INGEST_TREE_TASK = "ingest.tree"
SEARCH_TASK = "search.query"
REPROCESS_TASK = "reprocess.run"


def make_celery(settings: Settings) -> Celery:
    """A Celery app configured for at-least-once delivery of idempotent, id-only tasks."""
    broker = resolve_redis_url(settings)
    policy = retry_policy(settings)
    app = Celery("bookchat", broker=broker, set_as_current=False)
    app.conf.update(
        task_queues=[Queue(name, Exchange(name), routing_key=name) for name in ALL_QUEUES],
        task_default_queue=CHAT_QUEUE,
        task_routes={
            "chat.*": {"queue": CHAT_QUEUE},
            "search.*": {"queue": CHAT_QUEUE},
            "ingest.*": {"queue": INGEST_QUEUE},
            "reprocess.*": {"queue": REPROCESS_QUEUE},
        },
        task_serializer="json",
        accept_content=["json"],
        # State lives in database rows; Celery results would only grow Redis.
        task_ignore_result=True,
        result_backend=None,
        # A task is acknowledged after it ran, and redelivered if its worker dies.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=settings.chat_job_time_limit_seconds + 30,
        task_soft_time_limit=settings.chat_job_time_limit_seconds,
        broker_transport_options={
            # Above the longest task plus any retry countdown, or tasks run twice.
            "visibility_timeout": policy.visibility_timeout_s,
            "socket_connect_timeout": 5,
        },
        broker_connection_retry_on_startup=True,
        # A submit must fail fast (503) rather than hang when the broker is down.
        task_publish_retry_policy=policy.publish_retry_policy(),
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        enable_utc=True,
    )
    return app


def task_id(job_id: uuid.UUID | str) -> str:
    """A fresh task id that names its job, so the broker's contents can be matched to rows."""
    return f"{job_id}.{secrets.token_hex(4)}"


def job_id_of(task: str) -> str:
    """The job id inside a task id made by `task_id`."""
    return task.split(".", 1)[0]


def enqueue_chat_job(celery: Celery, job_id: uuid.UUID) -> None:
    """Send the chat job's id to the chat queue (call only after the row is committed)."""
    celery.send_task(
        CHAT_ANSWER_TASK, args=[str(job_id)], queue=CHAT_QUEUE, task_id=task_id(job_id)
    )


def enqueue_ingest(celery: Celery, path: str, *, full: bool = False, run_id: str = "") -> None:
    """Send a textbook folder to the ingest queue."""
    celery.send_task(
        INGEST_TREE_TASK,
        args=[path],
        kwargs={"full": full, "run_id": run_id},
        queue=INGEST_QUEUE,
        task_id=task_id(run_id),
    )


def enqueue_reprocess(celery: Celery, job_id: uuid.UUID) -> None:
    """Send a reprocess job's id to the reprocess queue."""
    celery.send_task(
        REPROCESS_TASK, args=[str(job_id)], queue=REPROCESS_QUEUE, task_id=task_id(job_id)
    )


def waiting_job_ids(client: redis.Redis, queue: str) -> set[str]:
    """Ids of the jobs whose tasks wait in the broker's list for `queue` (not yet delivered)."""
    ids: set[str] = set()
    raw: Any = client.lrange(queue, 0, -1)
    for message in raw or []:
        try:
            ids.add(job_id_of(json.loads(message)["headers"]["id"]))
        except (ValueError, KeyError, TypeError):
            continue  # not one of ours (or not a Celery message)
    return ids
