"""The embedded Redis of a `bookchat dev`: recorded in var/run, watched, restarted on its port."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import redis

from cli.embedded_redis import ensure_embedded_redis
from cli.pidfiles import REDIS, alive, record
from cli.restart_budget import RestartBudget
from common.platform.errors import ServiceUnavailable


class RedisLost(Exception):
    """The embedded Redis died and could not be brought back: `bookchat dev` stops."""


def redis_pid(url: str) -> int:
    """The pid of the redis-server at `url`, by its own answer (a pid file could be stale)."""
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        info: Any = client.info("server")
        return int(info["process_id"])
    finally:
        client.close()


class RedisKeeper:
    """Notices that the embedded redis-server died and starts it again on the same port.

    The children were given its URL: on the same port, Celery and the API reconnect by
    themselves, and the append-only file brings back what was queued.
    """

    def __init__(self, var_dir: Path, url: str) -> None:
        self.var_dir = var_dir
        self.url = url
        self.port = int(url.rsplit(":", 1)[1].split("/")[0])
        self.pid = redis_pid(url)
        self.restarts = RestartBudget()
        record(var_dir, REDIS, self.pid)

    def check(self) -> str | None:
        """If Redis died, restart it and say so (None if it runs); RedisLost if it cannot."""
        if alive(self.pid):
            return None
        gone = f"the embedded Redis (pid {self.pid}, port {self.port}) exited"
        if not self.restarts.spend():
            raise RedisLost(f"{gone} {self.restarts}; see {self.var_dir / 'redis' / 'redis.log'}")
        try:
            url = ensure_embedded_redis(self.var_dir, port=self.port)
            self.pid = redis_pid(url)
        except (ServiceUnavailable, OSError, subprocess.SubprocessError, redis.RedisError) as exc:
            detail = exc.detail if isinstance(exc, ServiceUnavailable) else str(exc)
            raise RedisLost(f"{gone} and could not be restarted on its port: {detail}") from exc
        record(self.var_dir, REDIS, self.pid)
        return f"{gone}; restarted the embedded Redis on port {self.port} (pid {self.pid})"
