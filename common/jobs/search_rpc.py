"""Searching through the worker that owns the index: a task out, the reply back on Redis.

Local-mode Qdrant admits one process per folder, so the API never opens it; it asks the chat
queue instead and waits briefly for the answer on a one-off Redis list.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import redis
from celery import Celery

from common.jobs.queue import CHAT_QUEUE, SEARCH_TASK
from common.platform.errors import ServiceUnavailable

REPLY_TTL_SECONDS = 60
BLPOP_SLICE_SECONDS = 1.0


def request_search(
    celery: Celery,
    client: redis.Redis,
    query: str,
    k: int,
    path_prefix: str | None,
    timeout: float = 10.0,
    book: str | None = None,
) -> list[dict[str, Any]]:
    """Run a search on a worker (over every book, or one) and return its passages as dicts."""
    reply_to = f"bookchat:search:reply:{uuid.uuid4().hex}"
    kwargs = {"query": query, "k": k, "path_prefix": path_prefix, "reply_to": reply_to}
    if book is not None:
        kwargs["book"] = book  # absent otherwise, so a worker of the last release accepts it
    celery.send_task(
        SEARCH_TASK,
        kwargs=kwargs,
        # What Flower and Celery's own logs show of the task: never the reader's words.
        kwargsrepr=repr({**kwargs, "query": f"<{len(query)} characters>"}),
        queue=CHAT_QUEUE,
        expires=timeout,
    )
    item = _wait_for_reply(client, reply_to, timeout)
    if item is None:
        raise ServiceUnavailable("search timed out: is a chat worker running?")
    reply = json.loads(item[1])
    if "error" in reply:
        raise ServiceUnavailable(f"search failed: {reply['error']}")
    results: list[dict[str, Any]] = reply["results"]
    return results


def _wait_for_reply(client: redis.Redis, reply_to: str, timeout: float) -> Any:
    # Short BLPOPs: each must answer within the client's socket time-out, however long we wait.
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        item: Any = client.blpop([reply_to], timeout=max(0.01, min(remaining, BLPOP_SLICE_SECONDS)))
        if item is not None:
            return item
    return None


def send_reply(client: redis.Redis, reply_to: str, reply: dict[str, Any]) -> None:
    """Hand a search's results (or error) back to whoever waits on `reply_to`."""
    pipe = client.pipeline()
    pipe.rpush(reply_to, json.dumps(reply))
    pipe.expire(reply_to, REPLY_TTL_SECONDS)
    pipe.execute()
