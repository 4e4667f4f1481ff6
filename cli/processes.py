"""bookchat's processes: their command lines, and children that lead process groups of their own."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from common.jobs.queue import pool_queues
from common.platform.observability import MULTIPROC_ENV, default_metrics_dir
from common.platform.redis_client import redis_url
from common.platform.settings import Settings

BOOKCHAT = [sys.executable, "-m", "cli"]
# Read by path: importing it as `web.gunicorn_conf` would import the app before gevent patches.
GUNICORN_CONF = Path(__file__).resolve().parents[1] / "web" / "gunicorn_conf.py"


def web_command(
    settings: Settings,
    host: str = "127.0.0.1",
    connections: int | None = None,
    graceful_timeout: int | None = None,
) -> list[str]:
    """Gunicorn with gevent (web/gunicorn_conf.py): open streams and long-polls hold no thread."""
    graceful = ["--graceful-timeout", str(graceful_timeout)] if graceful_timeout else []
    capacity = ["--worker-connections", str(connections)] if connections else []
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(GUNICORN_CONF),
        "--bind",
        f"{host}:{settings.port}",
        *capacity,
        *graceful,
        "web:create_app()",
    ]


def worker_args(
    queues: Sequence[str],
    concurrency: int,
    hostname: str | None = None,
    loglevel: str | None = None,
) -> list[str]:
    """The arguments of `bookchat worker` for these queues."""
    args = ["worker", "--queues", ",".join(queues), "--concurrency", str(concurrency)]
    if hostname:
        args += ["--hostname", hostname]
    if loglevel:
        args += ["--loglevel", loglevel]
    return args


def worker_command(
    queues: Sequence[str],
    concurrency: int,
    hostname: str | None = None,
    loglevel: str | None = None,
) -> list[str]:
    """The `bookchat worker` command line for a child process."""
    return [*BOOKCHAT, *worker_args(queues, concurrency, hostname, loglevel)]


def celery_worker_argv(
    queues: Sequence[str],
    concurrency: int,
    pool: str,
    loglevel: str,
    hostname: str,
    lane_threads: int = 0,
) -> list[str]:
    """Arguments for `Celery.worker_main`: bookchat's workers skip gossip and mingle.

    A worker of the chat queue answers the fast lane of repeats too (common/jobs/repeat_lane.py):
    on `lane_threads` threads of its own with the thread pool (workers/fast_lane.py), else in
    its pool.
    """
    return [
        "worker",
        "--queues",
        ",".join(pool_queues(queues, pool, lane_threads)),
        "--concurrency",
        str(concurrency),
        "--pool",
        pool,
        "--loglevel",
        loglevel,
        "--hostname",
        hostname,
        "--without-gossip",
        "--without-mingle",
    ]


def child_env(settings: Settings) -> dict[str, str]:
    """Environment for children: they share the Redis the settings name and the var/ folder."""
    env = dict(os.environ)
    env["REDIS_URL"] = redis_url(settings)
    env["VAR_DIR"] = str(settings.var_dir.resolve())
    env["PORT"] = str(settings.port)
    # One Prometheus folder for the web and worker processes of this var/ (cleaned at start).
    env[MULTIPROC_ENV] = str(default_metrics_dir(settings.var_dir.resolve()))
    return env


def port_problem(port: int, host: str = "127.0.0.1") -> str | None:
    """Why the web server could not listen on host:port, or None if it can."""
    with socket.socket() as sock:
        # As gunicorn does: connections closing in TIME_WAIT do not make the port busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


@dataclass
class Child:
    """A process bookchat started, leader of its own process group."""

    name: str
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        """Its pid, which is also its process group's id."""
        return self.process.pid


def start_child(name: str, command: Sequence[str], env: dict[str, str]) -> Child:
    """Start a command in a session of its own, so a terminal's Ctrl-C reaches only us."""
    process = subprocess.Popen(
        list(command), env=env, stdin=subprocess.DEVNULL, start_new_session=True
    )
    return Child(name, process)


def stop_children(children: Sequence[Child], grace: float = 6.5, kill_wait: float = 3.0) -> None:
    """SIGTERM each child in order, then SIGKILL whatever is left of their process groups.

    SIGTERM goes to the group's leader, which stops its own workers: gunicorn its workers,
    Celery its pool after handing running jobs back (Celery's pool processes would die at
    once on a SIGTERM of their own). After `grace` seconds SIGKILL goes to the whole group,
    so even a worker whose parent is gone cannot keep the port.
    """
    for child in children:
        if child.process.poll() is None:
            _signal_leader(child, signal.SIGTERM)
    deadline = time.monotonic() + grace
    _wait_for_groups(children, deadline)
    for child in children:
        if _group_alive(child):
            print(f"{child.name} did not stop within {grace:.0f}s; killing it", file=sys.stderr)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
    _wait_for_groups(children, time.monotonic() + kill_wait)


def _signal_leader(child: Child, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        child.process.send_signal(sig)


def _wait_for_groups(children: Sequence[Child], deadline: float) -> None:
    while any(_group_alive(child) for child in children) and time.monotonic() < deadline:
        time.sleep(0.05)


def _group_alive(child: Child) -> bool:
    # Reap the leader first: a zombie leader would keep its group "alive" forever.
    child.process.poll()
    try:
        os.killpg(child.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
