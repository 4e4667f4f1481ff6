"""What the client commands (ask, ingest, search, worker-alive) need before they send anything.

They talk to a running bookchat and never start one: no embedded redis-server of their own,
and no job queued where no worker would ever take it.
"""

from __future__ import annotations

import redis
from kombu.utils.url import maybe_sanitize_url

from cli.embedded_redis import find_embedded_redis
from common.jobs.worker_heartbeats import live_workers
from common.platform.redis_client import make_redis
from common.platform.settings import Settings

NOT_RUNNING_EXIT = 2


class NotRunning(Exception):
    """bookchat, or a worker for the needed queue, is not running: exit 2 with this message."""


def running_settings(settings: Settings) -> Settings:
    """`settings` naming the running bookchat's Redis: REDIS_URL, or the embedded one under var/."""
    if settings.redis_url:
        return settings
    url = find_embedded_redis(settings.var_dir)
    if url is None:
        raise NotRunning(
            f"bookchat is not running (no embedded Redis is running under {settings.var_dir}): "
            "start it with `make dev` (or set REDIS_URL)"
        )
    return settings.model_copy(update={"redis_url": url})


def connect(settings: Settings) -> redis.Redis:
    """Redis of the running bookchat (REDIS_URL, or the embedded one under var/)."""
    settings = running_settings(settings)
    client = make_redis(settings)
    try:
        client.ping()
    except redis.RedisError as exc:
        url = maybe_sanitize_url(settings.redis_url)
        raise NotRunning(f"cannot reach Redis at {url}: {exc}") from exc
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
