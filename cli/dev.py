"""`bookchat dev`: every process on one machine, up only when a question would be answered.

The supervisor starts a worker and the web server, each in a process group of its own, so a
terminal's Ctrl-C reaches only this process; it then stops them in order and waits for them.
"""

from __future__ import annotations

import contextlib
import fcntl
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TextIO

import httpx

from cli.ingest import summary_line
from cli.processes import (
    Child,
    child_env,
    port_problem,
    start_child,
    stop_children,
    web_command,
    worker_command,
)
from common.db import make_engine, make_session_factory, session_scope
from common.embedded_redis import stop_embedded_redis
from common.errors import ServiceUnavailable
from common.ingest_jobs import queue_ingest_job, wait_for_ingest_job
from common.migrate import upgrade_database
from common.models import IngestJob, JobStatus
from common.observability import MULTIPROC_ENV, reset_metrics_dir
from common.queue import ALL_QUEUES, make_celery
from common.settings import Settings

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# gunicorn's own bound on finishing requests: long-polls and event streams would take 30 s.
WEB_GRACEFUL_TIMEOUT = 3
PROGRESS_EVERY = 5.0


def run_dev(settings: Settings, concurrency: int = 4) -> int:
    """Run Redis (embedded if needed), migrations, one worker and the API until Ctrl-C."""
    stop = StopRequest()
    stop.install()
    lock = _claim(settings.var_dir)
    if lock is None:
        _say(f"bookchat dev is already running for {settings.var_dir}: stop it first", err=True)
        return 1
    with lock:
        problem = port_problem(settings.port)
        if problem:
            _say(
                f"bookchat dev: port {settings.port} on 127.0.0.1 is not free ({problem}); "
                f"stop what holds it or pick another, e.g. `PORT={_another_port(settings.port)} "
                "make dev`",
                err=True,
            )
            return 1
        dev = DevSupervisor(settings, stop)
        try:
            return dev.run(concurrency)
        except DevExit as exc:
            return exc.code
        finally:
            dev.shutdown()


class StopRequest:
    """Ctrl-C, SIGTERM or SIGHUP, recorded rather than raised: start-up and shutdown both finish
    what they are doing, and a second Ctrl-C cannot cut the shutdown short."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def install(self) -> None:
        """Record the stop signals from now on."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._record)

    def _record(self, signum: int, _frame: FrameType | None) -> None:
        self.signum = self.signum or signum

    @property
    def requested(self) -> bool:
        """Whether a stop signal arrived."""
        return self.signum is not None


class DevExit(Exception):
    """Leave `bookchat dev` with this exit code (after stopping everything)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class DevSupervisor:
    """Starts the processes, waits until bookchat answers, watches them, and stops them."""

    def __init__(self, settings: Settings, stop: StopRequest) -> None:
        self.settings = settings
        self.stop = stop
        self.owns_redis = settings.redis_url is None
        self.web: Child | None = None
        self.worker: Child | None = None
        self.up = False

    @property
    def children(self) -> list[Child]:
        """The children in stopping order: the web server first, then the worker."""
        return [child for child in (self.web, self.worker) if child is not None]

    def run(self, concurrency: int) -> int:
        """Start everything, say so once it answers, and wait for Ctrl-C or a child's exit."""
        env = child_env(self.settings)  # starts the embedded Redis if REDIS_URL is unset
        reset_metrics_dir(Path(env[MULTIPROC_ENV]))  # no samples of earlier runs
        upgrade_database(self.settings)
        self.check()
        self.worker = start_child("worker", worker_command(ALL_QUEUES, concurrency), env)
        command = web_command(self.settings, graceful_timeout=WEB_GRACEFUL_TIMEOUT)
        self.web = start_child("web", command, env)
        not_indexed = self.index_textbook()
        self.wait_until_ready(indexed=not not_indexed)
        if not_indexed:
            _say(
                f"warning: the textbook is not indexed ({not_indexed}); fix TEXTBOOK_PATH or "
                "run `bookchat ingest PATH`",
                err=True,
            )
        _say(f"bookchat is up: http://127.0.0.1:{self.settings.port}  (API docs at /docs)")
        self.up = True
        while True:
            self.check()
            time.sleep(0.3)

    def check(self) -> None:
        """Raise DevExit on Ctrl-C (0) or when a child exited (1)."""
        if self.stop.requested:
            raise DevExit(0)
        for child in self.children:
            code = child.process.poll()
            if code is None:
                continue
            when = "" if self.up else " before bookchat was up"
            _say(
                f"bookchat dev: the {child.name} process exited{when} with code {code} (see its "
                "output above); stopping the others",
                err=True,
            )
            raise DevExit(1)

    def index_textbook(self) -> str | None:
        """Ingest the textbook through the worker and wait; why it is not indexed, or None."""
        path = self.settings.textbook_path.resolve()
        engine = make_engine(self.settings)
        sessions = make_session_factory(engine)
        try:
            try:
                with session_scope(sessions) as session:
                    job = queue_ingest_job(session, make_celery(self.settings), str(path))
            except ServiceUnavailable as exc:
                _say(f"could not queue the textbook's ingest job: {exc.detail}", err=True)
                return exc.detail
            _say(f"indexing the textbook in {path} before taking questions ...")
            progress = _Progress()
            finished = None
            while finished is None:
                self.check()
                finished = wait_for_ingest_job(sessions, job.id, 0.5, progress.show)
        finally:
            engine.dispose()
        _say(summary_line(finished))
        if finished.status != JobStatus.COMPLETED.value:
            return finished.error_message or f"the ingest job {finished.status}"
        if not finished.collection:
            return "none of its files could be ingested"
        return None

    def wait_until_ready(self, indexed: bool) -> None:
        """Poll GET /readyz until it answers 200, or, with no index, until all else is ready."""
        url = f"http://127.0.0.1:{self.settings.port}/readyz"
        note_at = time.monotonic() + 30
        with httpx.Client(timeout=2, trust_env=False) as http:
            while True:
                self.check()
                try:
                    response = http.get(url)
                    if response.status_code == 200 or (
                        not indexed and _ready_but_the_index(response)
                    ):
                        return
                    last = f"{response.status_code} {response.text.strip()}"
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}: {exc}"
                if time.monotonic() > note_at:
                    _say(f"still waiting for {url}: {last}", err=True)
                    note_at = time.monotonic() + 30
                time.sleep(0.3)

    def shutdown(self) -> None:
        """Stop the children in order, then the embedded Redis if this run owns it."""
        if self.children:
            _say("stopping bookchat ...", err=True)
        stop_children(self.children)
        if self.owns_redis:
            stop_embedded_redis(self.settings.var_dir)
        _say("bookchat stopped", err=True)


class _Progress:
    """Prints the textbook's ingest progress every few seconds while it changes."""

    def __init__(self) -> None:
        self.shown: tuple[int, int] | None = None
        self.next_at = time.monotonic() + PROGRESS_EVERY

    def show(self, job: IngestJob) -> None:
        """Called on each poll of the job's row."""
        state = (job.files_seen, job.files_total)
        if time.monotonic() < self.next_at or state == self.shown:
            return
        self.shown, self.next_at = state, time.monotonic() + PROGRESS_EVERY
        if job.status == JobStatus.QUEUED.value:
            _say("  waiting for the worker to start ...")
        else:
            _say(f"  {job.files_seen}/{job.files_total or '?'} files, {job.chunks_written} chunks")


def _ready_but_the_index(response: httpx.Response) -> bool:
    """Whether /readyz fails only for want of an index (the textbook could not be ingested)."""
    try:
        checks = response.json()["checks"]
        return all(check["ok"] for name, check in checks.items() if name != "index")
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


def _claim(var_dir: Path) -> TextIO | None:
    """An exclusive lock on var/dev.lock, or None if another `bookchat dev` holds it."""
    var_dir.mkdir(parents=True, exist_ok=True)
    lock = (var_dir / "dev.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    return lock


def _another_port(port: int) -> int:
    """A free port near `port` to suggest."""
    for candidate in range(port + 1, min(port + 50, 65536)):
        if port_problem(candidate) is None:
            return candidate
    return 9000


def _say(message: str, err: bool = False) -> None:
    # After SIGHUP the terminal may be gone; losing a message must not stop the shutdown.
    with contextlib.suppress(OSError):
        print(message, file=sys.stderr if err else sys.stdout, flush=True)
