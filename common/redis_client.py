"""Redis connections, resolving the embedded default when REDIS_URL is unset."""

from __future__ import annotations

from typing import Any

import redis

from common.embedded_redis import ensure_embedded_redis, find_embedded_redis
from common.errors import ServiceUnavailable
from common.settings import Settings


class RedisNotRunning(ServiceUnavailable):
    """REDIS_URL is unset and no embedded redis-server runs under var/."""

    code, title = "redis_not_running", "bookchat is not running"


def resolve_redis_url(settings: Settings, start: bool = True) -> str:
    """REDIS_URL, or the URL of the private redis-server (started only if `start`)."""
    if settings.redis_url:
        return settings.redis_url
    if start:
        settings.redis_url = ensure_embedded_redis(settings.var_dir)
        return settings.redis_url
    url = find_embedded_redis(settings.var_dir)
    if url is None:
        raise RedisNotRunning(f"no embedded Redis is running under {settings.var_dir}")
    settings.redis_url = url
    return url


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
    url = resolve_redis_url(settings)
    if pool_wait_seconds is None:
        return redis.Redis.from_url(url, **options)
    pool = redis.BlockingConnectionPool.from_url(url, timeout=pool_wait_seconds, **options)
    return redis.Redis.from_pool(pool)  # closing the client closes its pool
