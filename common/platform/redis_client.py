"""Redis connections to the URL the settings name; they connect, and never start a server."""

from __future__ import annotations

from typing import Any

import redis

from common.platform.errors import ServiceUnavailable
from common.platform.settings import Settings


class RedisNotConfigured(ServiceUnavailable):
    """REDIS_URL is unset: the command line passes it down (it may start the embedded Redis)."""

    code, title = "redis_not_configured", "Redis is not configured"


def redis_url(settings: Settings) -> str:
    """The Redis URL of these settings (RedisNotConfigured when there is none)."""
    if settings.redis_url:
        return settings.redis_url
    raise RedisNotConfigured(
        "REDIS_URL is not set: start bookchat with `bookchat dev` (or `bookchat web` / "
        "`bookchat worker`, which use the embedded Redis under var/), or set REDIS_URL"
    )


def make_redis(settings: Settings, pool_wait_seconds: float | None = None) -> redis.Redis:
    """A Redis client with string responses and a pool of `REDIS_POOL_SIZE` connections.

    With `pool_wait_seconds`, a caller finding every connection busy waits that long for one
    (then ConnectionError) instead of failing at once: for processes with many greenlets
    (the web process passes `REDIS_POOL_WAIT_SECONDS`).
    Every command waits at most `REDIS_SOCKET_TIMEOUT_SECONDS` for its reply (then
    TimeoutError), so no blocking command may block longer than that on these clients.
    """
    options: dict[str, Any] = {
        "decode_responses": True,
        "health_check_interval": 30,
        "socket_connect_timeout": settings.redis_connect_timeout_seconds,
        "socket_timeout": settings.redis_socket_timeout_seconds,
        "max_connections": settings.redis_pool_size,
    }
    url = redis_url(settings)
    if pool_wait_seconds is None:
        return redis.Redis.from_url(url, **options)
    pool = redis.BlockingConnectionPool.from_url(url, timeout=pool_wait_seconds, **options)
    return redis.Redis.from_pool(pool)  # closing the client closes its pool


# What names a database, with redis-py's defaults for what a URL may leave out.
_SERVER_FIELDS = {"host": "localhost", "port": 6379, "path": None, "db": 0, "username": None}


def same_database(first: redis.Redis, second: redis.Redis) -> bool:
    """Whether two clients reach the same Redis database (address, database and credentials)."""
    a, b = first.connection_pool, second.connection_pool
    if a is b:
        return True
    if a.connection_class is not b.connection_class:
        return False
    kwargs_a, kwargs_b = a.connection_kwargs, b.connection_kwargs
    return all(
        kwargs_a.get(name, default) == kwargs_b.get(name, default)
        for name, default in _SERVER_FIELDS.items()
    )
