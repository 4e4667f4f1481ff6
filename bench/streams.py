"""Thousands of open event streams on one web process: `python -m bench.streams [--streams N]`.

A private Redis and SQLite, one gunicorn started with `bookchat web`'s own command line, N chat
jobs made directly in the database, and one asyncio client holding N Server-Sent Events
connections. Once every stream is open, one event is published to each job's stream and every
client must see its own; meanwhile a separate process samples `GET /healthz` and
`POST /v1/chat/jobs` latency. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from bench.support import REPO_ROOT, free_port, percentile
from cli.embedded_redis import ensure_embedded_redis, stop_embedded_redis
from cli.processes import web_command
from common.accounts.users import create_user
from common.jobs.chat_jobs import submit_chat_job
from common.jobs.events import JobEvents
from common.jobs.schemas import ChatJobCreate
from common.platform.db import make_engine, make_session_factory, session_scope
from common.platform.migrate import upgrade_database
from common.platform.redis_client import make_redis
from common.platform.settings import Settings

PASSWORD = "bench-password-1"
SECRET = "bench-secret-" + "x" * 40
PHASES = ("idle", "opening", "held", "fan-out")


@dataclass
class WebProcess:
    """A gunicorn started with `bookchat web`'s command line."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        """The API's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def worker_pid(self) -> int:
        """The pid of gunicorn's (single) worker process."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if len(children) != 1:
            raise RuntimeError(f"expected one gunicorn worker, found {children}")
        return int(children[0])

    def worker_rss_kb(self) -> int:
        """Resident memory of the worker, in KiB."""
        for line in Path(f"/proc/{self.worker_pid()}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def wait_up(self, timeout: float = 60) -> None:
        """Wait until /healthz answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period."""
        self.process.terminate()
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_web(settings: Settings, env: dict[str, str]) -> WebProcess:
    """Start gunicorn as `bookchat web` does, on settings.port, logging under settings.var_dir."""
    log_path = settings.var_dir / "web.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            web_command(settings), env=env, cwd=REPO_ROOT, stdout=log, stderr=log
        )
    web = WebProcess(process, settings.port, log_path)
    web.wait_up()
    return web


def make_jobs(settings: Settings, count: int) -> tuple[str, list[uuid.UUID]]:
    """A reader account and `count` queued chat jobs of theirs, written straight to the database."""
    engine = make_engine(settings)
    sessions = make_session_factory(engine)
    email = f"streams-{uuid.uuid4().hex[:10]}@example.com"
    with session_scope(sessions) as session:
        user = create_user(session, email, PASSWORD, "Streams")
        session.flush()
        user_id = user.id
    job_ids: list[uuid.UUID] = []
    for start in range(0, count, 500):
        with session_scope(sessions) as session:
            for n in range(start, min(count, start + 500)):
                job, _ = submit_chat_job(
                    session, user_id, ChatJobCreate(message=f"question {n}"), None
                )
                job_ids.append(job.id)
    engine.dispose()
    return email, job_ids


def login(base_url: str, email: str) -> str:
    """An access token for the account."""
    response = httpx.post(
        f"{base_url}/v1/auth/login", json={"email": email, "password": PASSWORD}, timeout=10
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


@dataclass
class Stream:
    """One client's view of its job's event stream."""

    job_id: uuid.UUID
    opened: bool = False
    received: bool = False
    ended: bool = False
    error: str | None = None


@dataclass
class Tally:
    """Counts streams opened and events received, with events set when all have."""

    total: int
    opened: int = 0
    received: int = 0
    all_opened: asyncio.Event = field(default_factory=asyncio.Event)
    all_received: asyncio.Event = field(default_factory=asyncio.Event)

    def open_one(self) -> None:
        """One more stream is open."""
        self.opened += 1
        if self.opened >= self.total:
            self.all_opened.set()

    def receive_one(self) -> None:
        """One more stream saw its event."""
        self.received += 1
        if self.received >= self.total:
            self.all_received.set()


async def follow(
    stream: Stream, port: int, token: str, gate: asyncio.Semaphore, tally: Tally
) -> None:
    """Hold the job's SSE connection until it ends, noting its opening and its marked event."""
    request = (
        f"GET /v1/chat/jobs/{stream.job_id}/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    marker = str(stream.job_id).encode()
    writer: asyncio.StreamWriter | None = None
    try:
        async with gate:  # bound the handshakes in flight, as a crowd of browsers would be
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            buffer = b""
            while b"retry:" not in buffer:
                chunk = await reader.read(65536)
                if not chunk:
                    raise ConnectionError(f"closed before the stream began: {buffer[:200]!r}")
                buffer += chunk
            if not buffer.startswith(b"HTTP/1.1 200"):
                raise ConnectionError(buffer.split(b"\r\n", 1)[0].decode())
            stream.opened = True
            tally.open_one()
        while True:
            if not stream.received and marker in buffer:
                stream.received = True
                tally.receive_one()
            buffer = buffer[-len(marker) :]
            chunk = await reader.read(65536)
            if not chunk:
                break
            buffer += chunk
    except (OSError, ConnectionError) as exc:
        stream.error = str(exc) or type(exc).__name__
    finally:
        stream.ended = True
        if writer is not None:
            writer.close()


def publish_to_all(events: JobEvents, job_ids: Sequence[uuid.UUID], event: str) -> None:
    """One event on each job's stream, carrying the job's id so its client can spot it."""
    for job_id in job_ids:
        data = {"status": "done"} if event == "done" else {"status": "queued", "bench": str(job_id)}
        events.publish(job_id, event, data)


def probe(
    base_url: str,
    token: str,
    phase: Synchronized[int],
    samples: multiprocessing.Queue[Any],
    ready: Any,
) -> None:
    """In a process of its own: time /healthz every 20 ms and a submit every 100 ms."""
    headers = {"Authorization": f"Bearer {token}"}
    found: list[tuple[int, str, float, int]] = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        n = 0
        client.get("/healthz")
        ready.set()
        while phase.value >= 0:
            started = time.perf_counter()
            status = client.get("/healthz").status_code
            found.append((phase.value, "healthz", (time.perf_counter() - started) * 1000, status))
            if n % 5 == 0:
                started = time.perf_counter()
                status = client.post(
                    "/v1/chat/jobs", json={"message": f"probe {n}"}, headers=headers
                ).status_code
                found.append(
                    (phase.value, "submit", (time.perf_counter() - started) * 1000, status)
                )
            n += 1
            time.sleep(0.02)
    samples.put(found)


@dataclass
class Outcome:
    """What the run measured."""

    streams: list[Stream]
    rss_before_kb: int
    rss_open_kb: int
    open_seconds: float
    deliver_seconds: float
    samples: list[tuple[int, str, float, int]]

    @property
    def opened(self) -> int:
        """Streams that began."""
        return sum(stream.opened for stream in self.streams)

    @property
    def alive(self) -> int:
        """Streams that got their event and were still open then."""
        return sum(stream.received for stream in self.streams)

    def latencies(self, kind: str, phases: Sequence[str]) -> list[float]:
        """Successful request latencies (ms) of this kind in these phases."""
        wanted = {PHASES.index(name) for name in phases}
        return [
            ms for ph, k, ms, status in self.samples if k == kind and ph in wanted and status < 400
        ]

    def failures(self, kind: str) -> int:
        """Requests of this kind that did not succeed."""
        return sum(1 for _ph, k, _ms, status in self.samples if k == kind and status >= 400)


async def hold_streams(
    web: WebProcess,
    events: JobEvents,
    token: str,
    job_ids: Sequence[uuid.UUID],
    phase: Synchronized[int] | None = None,
    hold_seconds: float = 3.0,
    timeout: float = 120.0,
) -> tuple[list[Stream], int, int, float, float]:
    """Open a stream per job, hold them, publish to each, and wait until every client has it.

    Returns the streams, the worker's RSS before and with the streams open, the seconds it
    took to open them all, and the seconds from the first publish to the last delivery.
    """
    streams = [Stream(job_id) for job_id in job_ids]
    tally, gate = Tally(len(streams)), asyncio.Semaphore(200)

    def set_phase(name: str) -> None:
        if phase is not None:
            phase.value = PHASES.index(name)

    rss_before = web.worker_rss_kb()
    set_phase("opening")
    started = time.monotonic()
    tasks = [asyncio.create_task(follow(s, web.port, token, gate, tally)) for s in streams]
    await _wait_or_fail(tally.all_opened, streams, timeout, "open")
    open_seconds = time.monotonic() - started
    set_phase("held")
    await asyncio.sleep(hold_seconds)
    rss_open = web.worker_rss_kb()
    set_phase("fan-out")
    started = time.monotonic()
    await asyncio.to_thread(publish_to_all, events, job_ids, "status")
    await _wait_or_fail(tally.all_received, streams, timeout, "receive")
    deliver_seconds = time.monotonic() - started
    await asyncio.sleep(0.5)
    if phase is not None:
        phase.value = -1
    # End every stream the way a job ends: the terminal event closes it from the server side.
    await asyncio.to_thread(publish_to_all, events, job_ids, "done")
    _done, pending = await asyncio.wait(tasks, timeout=30)
    for task in pending:
        task.cancel()
    return streams, rss_before, rss_open, open_seconds, deliver_seconds


async def _wait_or_fail(
    event: asyncio.Event, streams: Sequence[Stream], timeout: float, what: str
) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        errors = [s.error for s in streams if s.error][:5]
        raise RuntimeError(f"not every stream could {what} within {timeout}s: {errors}") from None


def raise_fd_limit(needed: int) -> None:
    """Allow this process `needed` open files (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def run(count: int, var_dir: Path) -> Outcome:
    """The whole benchmark in a private var_dir."""
    raise_fd_limit(count + 512)
    redis_url = ensure_embedded_redis(var_dir)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        var_dir=var_dir,
        redis_url=redis_url,
        database_url=None,
        qdrant_url=None,
        openai_api_key=None,
        jwt_secret_key=SecretStr(SECRET),
        port=free_port(),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "REDIS_", "DATA"))}
    env.update(
        ENVIRONMENT="test",
        VAR_DIR=str(var_dir),
        REDIS_URL=redis_url,
        JWT_SECRET_KEY=SECRET,
        PORT=str(settings.port),
        RATE_LIMIT_SUBMIT="1000000/minute",  # one account submits ten times a second
        USER_DAILY_TOKENS="0",  # ... and would spend its day's model tokens within the run
        # One account holds every stream: its fair share is all of them (caps: tests/web).
        STREAM_LIMIT_PER_USER=str(count),
    )
    upgrade_database(settings)
    email, job_ids = make_jobs(settings, count)
    web = start_web(settings, env)
    client = make_redis(settings)
    try:
        token = login(web.base_url, email)
        context = multiprocessing.get_context("spawn")
        phase: Synchronized[int] = context.Value("i", 0)
        queue: multiprocessing.Queue[Any] = context.Queue()
        ready = context.Event()
        prober = context.Process(target=probe, args=(web.base_url, token, phase, queue, ready))
        prober.start()
        ready.wait(60)
        time.sleep(3)  # the idle baseline, and a warm worker before its RSS is read
        streams, before, opened, open_s, deliver_s = asyncio.run(
            hold_streams(web, JobEvents(client), token, job_ids, phase)
        )
        phase.value = -1
        samples = queue.get(timeout=60)
        prober.join(timeout=10)
        return Outcome(streams, before, opened, open_s, deliver_s, samples)
    finally:
        client.close()
        web.stop()
        stop_embedded_redis(var_dir)


def report(outcome: Outcome, count: int) -> dict[str, Any]:
    """Print the table and return the summary."""
    print(f"{'phase':<10} {'healthz n':>9} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'submit n':>8} {'p50 ms':>7} {'p99 ms':>7}")  # fmt: skip
    for name in PHASES:
        health = outcome.latencies("healthz", [name])
        submit = outcome.latencies("submit", [name])
        print(
            f"{name:<10} {len(health):>9} {percentile(health, 50):>7.1f} "
            f"{percentile(health, 99):>7.1f} {len(submit):>8} {percentile(submit, 50):>7.1f} "
            f"{percentile(submit, 99):>7.1f}"
        )
    held = ["held", "fan-out"]
    rss_delta = outcome.rss_open_kb - outcome.rss_before_kb
    print(
        f"streams {count}: opened {outcome.opened} in {outcome.open_seconds:.1f}s, "
        f"all received their event {outcome.deliver_seconds:.2f}s after the first publish; "
        f"worker RSS {outcome.rss_before_kb / 1024:.0f} -> {outcome.rss_open_kb / 1024:.0f} MiB; "
        f"failed requests: healthz {outcome.failures('healthz')}, "
        f"submit {outcome.failures('submit')}"
    )
    return {
        "open": outcome.opened,
        "alive": outcome.alive,
        "healthz_p99_ms": round(percentile(outcome.latencies("healthz", held), 99), 2),
        "submit_p99_ms": round(percentile(outcome.latencies("submit", held), 99), 2),
        "rss_per_stream_kb": round(rss_delta / max(1, outcome.opened), 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the JSON summary last."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=2000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-streams-") as tmp:
        outcome = run(args.streams, Path(tmp))
    summary = report(outcome, args.streams)
    print(json.dumps({"streams": summary}))
    return 0 if summary["alive"] == args.streams else 1


if __name__ == "__main__":
    raise SystemExit(main())
