"""Starting bookchat's processes: the web server, workers, and the all-in-one dev supervisor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from common.db import make_engine, make_session_factory, session_scope
from common.embedded_redis import stop_embedded_redis
from common.ingest_jobs import queue_ingest_job
from common.migrate import upgrade_database
from common.queue import ALL_QUEUES, make_celery
from common.redis_client import resolve_redis_url
from common.settings import Settings

BOOKCHAT = [sys.executable, "-m", "cli"]


def web_command(settings: Settings, host: str = "127.0.0.1", threads: int = 32) -> list[str]:
    """Gunicorn with threads, so long-polls and event streams don't block other requests."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--worker-class",
        "gthread",
        "--workers",
        "1",
        "--threads",
        str(threads),
        "--bind",
        f"{host}:{settings.port}",
        "--timeout",
        "120",
        "--access-logfile",
        "-",
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
    queues: Sequence[str], concurrency: int, pool: str, loglevel: str, hostname: str
) -> list[str]:
    """Arguments for `Celery.worker_main`: bookchat's workers skip gossip and mingle."""
    return [
        "worker",
        "--queues",
        ",".join(queues),
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
    """Environment for children: they share the resolved Redis and the var/ folder."""
    env = dict(os.environ)
    env["REDIS_URL"] = resolve_redis_url(settings)
    env["VAR_DIR"] = str(settings.var_dir.resolve())
    env["PORT"] = str(settings.port)
    return env


def run_dev(settings: Settings, concurrency: int = 4) -> int:
    """Run Redis (embedded if needed), migrations, one worker and the API until Ctrl-C."""
    owns_redis = settings.redis_url is None
    signal.signal(signal.SIGTERM, _interrupt)
    env = child_env(settings)
    upgrade_database(settings)
    children = [
        subprocess.Popen(worker_command(ALL_QUEUES, concurrency), env=env),
        subprocess.Popen(web_command(settings), env=env),
    ]
    _queue_textbook(settings)
    print(f"bookchat is up: http://127.0.0.1:{settings.port}  (API docs at /docs)", flush=True)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("a bookchat process exited; stopping the others", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        # Ctrl-C reaches the whole process group, and impatient users press it twice: shut
        # down without being interrupted again, or the embedded Redis would be left running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _stop(children)
        if owns_redis:
            stop_embedded_redis(settings.var_dir)


def _queue_textbook(settings: Settings) -> None:
    engine = make_engine(settings)
    try:
        with session_scope(make_session_factory(engine)) as session:
            queue_ingest_job(session, make_celery(settings), str(settings.textbook_path.resolve()))
    finally:
        engine.dispose()


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _stop(children: list[subprocess.Popen[bytes]], grace: float = 15.0) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
