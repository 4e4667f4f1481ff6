"""Worker heartbeats in Redis, so readiness can tell whether anyone consumes each queue."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from typing import Any

import redis

_PREFIX = "bookchat:worker:"
INTERVAL_SECONDS = 5
TTL_SECONDS = 20


def beat(client: redis.Redis, name: str, queues: list[str]) -> None:
    """Record that the worker is alive and which queues it consumes."""
    payload = json.dumps({"name": name, "queues": queues, "at": time.time()})
    client.set(_PREFIX + name, payload, ex=TTL_SECONDS)


def live_workers(client: redis.Redis) -> list[dict[str, Any]]:
    """Workers that beat within the TTL."""
    keys = list(client.scan_iter(match=_PREFIX + "*", count=100))
    values: Any = client.mget(keys) if keys else []
    return [json.loads(value) for value in values if value]


def start_heartbeat(
    client: redis.Redis, name: str, queues: list[str], stop: threading.Event
) -> threading.Thread:
    """Beat every few seconds in a daemon thread until `stop` is set."""

    def run() -> None:
        while not stop.is_set():
            # If Redis is briefly away, readiness says so; keep beating.
            with contextlib.suppress(redis.RedisError):
                beat(client, name, queues)
            stop.wait(INTERVAL_SECONDS)
        client.delete(_PREFIX + name)

    thread = threading.Thread(target=run, name="bookchat-heartbeat", daemon=True)
    thread.start()
    return thread
