"""What the client commands (ask, ingest, search, worker-alive) need before they send anything.

They talk to a running bookchat and never start one: no embedded redis-server of their own,
and no job queued where no worker would ever take it.
"""

from __future__ import annotations

import redis
from kombu.utils.url import maybe_sanitize_url

from common.heartbeat import live_workers
from common.redis_client import RedisNotRunning, make_redis, resolve_redis_url
from common.settings import Settings

NOT_RUNNING_EXIT = 2


class NotRunning(Exception):
    """bookchat, or a worker for the needed queue, is not running: exit 2 with this message."""


def connect(settings: Settings) -> redis.Redis:
    """Redis of the running bookchat (REDIS_URL, or the embedded one under var/)."""
    try:
        url = resolve_redis_url(settings, start=False)
    except RedisNotRunning as exc:
        raise NotRunning(
            f"bookchat is not running ({exc.detail}): start it with `make dev` (or set REDIS_URL)"
        ) from exc
    client = make_redis(settings)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise NotRunning(f"cannot reach Redis at {maybe_sanitize_url(url)}: {exc}") from exc
    return client


def require_worker(client: redis.Redis, queue: str) -> None:
    """Fail fast unless a live worker consumes `queue` (from the workers' heartbeats)."""
    if any(queue in worker.get("queues", []) for worker in live_workers(client)):
        return
    raise NotRunning(
        f"no worker consumes the `{queue}` queue: start one with "
        f"`bookchat worker --queues {queue}` (or `make dev`)"
    )


def connect_to_worker(settings: Settings, queue: str) -> redis.Redis:
    """Redis of the running bookchat, once a live worker consumes `queue`."""
    client = connect(settings)
    require_worker(client, queue)
    return client
