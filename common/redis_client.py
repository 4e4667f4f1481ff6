"""Redis connections, resolving the embedded default when REDIS_URL is unset."""

from __future__ import annotations

import redis

from common.embedded_redis import ensure_embedded_redis
from common.settings import Settings


def resolve_redis_url(settings: Settings) -> str:
    """REDIS_URL, or the URL of the private redis-server (started if needed)."""
    if settings.redis_url:
        return settings.redis_url
    settings.redis_url = ensure_embedded_redis(settings.var_dir)
    return settings.redis_url


def make_redis(settings: Settings) -> redis.Redis:
    """A Redis client with string responses and a bounded connection pool."""
    return redis.Redis.from_url(
        resolve_redis_url(settings),
        decode_responses=True,
        health_check_interval=30,
        socket_connect_timeout=5,
        max_connections=64,
    )
