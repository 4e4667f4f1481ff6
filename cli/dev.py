"""`bookchat dev`: every process on one machine, up only when a question would be answered.

The supervisor starts a worker and the web server, each in a process group of its own, so a
terminal's Ctrl-C reaches only this process; it then stops them in order and waits for them.
Should the supervisor itself die, its lifeline (cli/lifeline.py) stops them; pid files under
var/run let `bookchat stop` find them. It restarts its embedded Redis on the same port when
that dies, or stops.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TextIO

import httpx

from cli.embedded_redis import ensure_embedded_redis, stop_embedded_redis
from cli.ingest import summary_line
from cli.lifeline import Lifeline
from cli.ownership import claim_var_dir, leftovers_refusal, port_refusal
from cli.pidfiles import LIFELINE, REDIS, SUPERVISOR, WEB, WORKER, forget, record
from cli.processes import (
    Child,
    child_env,
    port_problem,
    start_child,
    stop_children,
    web_command,
    worker_command,
)
from cli.redis_keeper import RedisKeeper, RedisLost
from cli.restart_budget import RestartBudget
from common.jobs.ingest_jobs import queue_ingest_job, wait_for_ingest_job
from common.jobs.queue import ALL_QUEUES, make_celery
from common.platform.db import make_engine, make_session_factory, session_scope
from common.platform.errors import ServiceUnavailable
from common.platform.migrate import upgrade_database
from common.platform.models import IngestJob, JobStatus
from common.platform.observability import MULTIPROC_ENV, reset_metrics_dir
from common.platform.settings import Settings

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# gunicorn's own bound on finishing requests: long-polls and event streams would take 30 s.
WEB_GRACEFUL_TIMEOUT = 3
PROGRESS_EVERY = 5.0


def run_dev(settings: Settings, concurrency: int = 4) -> int:
    """Run Redis (embedded if needed), migrations, one worker and the API until Ctrl-C."""
    stop = StopRequest()
    stop.install()
    lock = claim_var_dir(settings.var_dir, _say)
    if isinstance(lock, str):
        _say(lock, err=True)
        return 1
    with lock:
        # var/ first: another port is suggested only when no other stack uses this var/.
        refusal = leftovers_refusal(
            settings.var_dir, embedded_redis=settings.redis_url is None
        ) or port_refusal(settings.port, settings.var_dir, _another_port)
        if refusal:
            forget(settings.var_dir, SUPERVISOR)
            _say(refusal, err=True)
            return 1
        dev = DevSupervisor(settings, stop, lock)
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

    def __init__(self, settings: Settings, stop: StopRequest, lock: TextIO) -> None:
        self.settings = settings
        self.stop = stop
        self.lock = lock
        self.owns_redis = settings.redis_url is None
        self.web: Child | None = None
        self.worker: Child | None = None
        self.lifeline: Lifeline | None = None
        self.redis: RedisKeeper | None = None
        self.up = False
        self.env: dict[str, str] = {}
        self.commands: dict[str, list[str]] = {}
        self.restarts = {WORKER: RestartBudget(), WEB: RestartBudget()}

    @property
    def children(self) -> list[Child]:
        """The children in stopping order: the web server first, then the worker."""
        return [child for child in (self.web, self.worker) if child is not None]

    def run(self, concurrency: int) -> int:
        """Start everything, say so once it answers, and wait for Ctrl-C or a child's exit."""
        var_dir = self.settings.var_dir
        # First: whatever starts from here on is stopped by the lifeline should we die.
        self.lifeline = Lifeline.start(var_dir, self.lock, self.owns_redis)
        if self.owns_redis:
            url = ensure_embedded_redis(var_dir)
            # The children are given this URL: a restart must come back on the same port.
            self.redis = RedisKeeper(var_dir, url)
            self.settings = self.settings.model_copy(update={"redis_url": url})
        self.env = child_env(self.settings)
        reset_metrics_dir(Path(self.env[MULTIPROC_ENV]))  # no samples of earlier runs
        upgrade_database(self.settings)
        self.check()
        self.commands = {
            WORKER: list(worker_command(ALL_QUEUES, concurrency)),
            WEB: list(web_command(self.settings, graceful_timeout=WEB_GRACEFUL_TIMEOUT)),
        }
        self.worker = self.start(WORKER)
        self.web = self.start(WEB)
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

    def start(self, name: str) -> Child:
        """Start the worker or the web server and record its pid for `bookchat stop`."""
        child = start_child(name, self.commands[name], self.env)
        record(self.settings.var_dir, name, child.pid)
        return child

    def check(self) -> None:
        """Raise DevExit on Ctrl-C (0), or (1) when the lifeline exited, Redis died for good, a
        child exited before bookchat was up or kept dying after; restart what died once up."""
        if self.stop.requested:
            raise DevExit(0)
        if self.lifeline is not None and self.lifeline.exited() is not None:
            _say(
                f"bookchat dev: its lifeline process exited with code {self.lifeline.exited()}; "
                "stopping, since nothing would stop the others should bookchat dev die",
                err=True,
            )
            raise DevExit(1)
        if self.redis is not None:
            try:
                restarted = self.redis.check()
            except RedisLost as exc:
                _say(f"bookchat dev: {exc}; stopping the others", err=True)
                raise DevExit(1) from exc
            if restarted:
                _say(f"bookchat dev: {restarted}", err=True)
        for child in self.children:
            code = child.process.poll()
            if code is None:
                continue
            exited = f"bookchat dev: the {child.name} process exited"
            if not self.up:
                _say(f"{exited} before bookchat was up with code {code} (see its output "
                     "above); stopping the others", err=True)  # fmt: skip
                raise DevExit(1)
            budget = self.restarts[child.name]
            if not budget.spend():
                _say(f"{exited} with code {code}, {budget} (see its output above); "
                     "stopping the others", err=True)  # fmt: skip
                raise DevExit(1)
            self.restart(child, code)

    def restart(self, child: Child, code: int) -> None:
        """Bring a dead child back: a class keeps its answers after a crash or an OOM kill.

        What is left of its process group goes first (gunicorn workers holding the port); the
        worker's unfinished jobs come back by the broker's redelivery and the watchdog."""
        stop_children([child], grace=1.0)
        replacement = self.start(child.name)
        if child.name == WORKER:
            self.worker = replacement
        else:
            self.web = replacement
        _say(f"bookchat dev: the {child.name} process exited with code {code}; restarted it "
             f"(pid {replacement.pid})", err=True)  # fmt: skip

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
        url = f"http://127.0.0.1:{self.settings.port}/readyz?detail=true"
        token = self.settings.metrics_token
        # Loopback reads the report without a token; with one set, it is needed here too.
        headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
        note_at = time.monotonic() + 30
        with httpx.Client(timeout=2, trust_env=False, headers=headers) as http:
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
        var_dir = self.settings.var_dir
        stop_children(self.children)
        forget(var_dir, WEB, WORKER)
        if self.owns_redis:
            stop_embedded_redis(var_dir)
            forget(var_dir, REDIS)
        if self.lifeline is not None:
            self.lifeline.release()  # it exits, and with it the last hold on var/dev.lock
        forget(var_dir, LIFELINE, SUPERVISOR)
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
