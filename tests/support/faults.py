"""A bookchat deployment to break on purpose: its own Redis, workers we can kill, a slow model."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.openai_sim import SimConfig, SimulatorHandle, start_simulator
from cli.processes import worker_command
from common.jobs.lifecycle import job_attempts
from common.jobs.worker_heartbeats import live_workers
from common.platform.db import session_scope
from common.platform.migrate import upgrade_database
from common.platform.models import ChatJob, JobKind
from common.platform.redis_client import make_redis
from tests.support.redis_server import RedisServer
from tests.support.sse import join_answer, read_events
from tests.support.stack import REPO_ROOT, Stack, make_settings, settings_env
from web import create_app

# About 25 streamed tokens an answer: a few seconds in which to break something.
SLOW_MODEL = SimConfig(ttft_s=0.05, per_token_s=0.15)
# Short leases and a quick watchdog keep the tests fast; the benchmark uses the defaults.
FAST_RECOVERY = {
    "job_lease_seconds": 3.0,
    "watchdog_interval_seconds": 0.5,
    "broker_missing_grace_seconds": 6.0,
    "outage_bound_seconds": 20.0,
    "chat_max_tokens": 60,
}


@dataclass
class FaultStack:
    """The API (in process), N worker processes, a private Redis and a private model."""

    stack: Stack
    redis: RedisServer
    sim: SimulatorHandle
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def settings(self) -> Any:
        """The deployment's settings."""
        return self.stack.settings

    def start_worker(self, name: str, queues: str = "chat,ingest", concurrency: int = 4) -> None:
        """Start a worker process and wait until it sends heartbeats."""
        hostname = f"{name}-{uuid.uuid4().hex[:6]}@faults"
        log = (self.settings.var_dir / f"{name}.log").open("ab")
        self.workers[name] = subprocess.Popen(
            worker_command(queues.split(","), concurrency, hostname, "INFO"),
            env=settings_env(self.settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )
        client = make_redis(self.settings)
        wait_until(
            lambda: any(w["name"] == hostname for w in live_workers(client)),
            60,
            f"worker {name} did not start: {self.log(name)}",
        )

    def kill_worker(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send the worker a signal and wait for it to exit."""
        process = self.workers.pop(name)
        os.kill(process.pid, sig)
        process.wait(timeout=30)

    def log(self, name: str) -> str:
        """The tail of a worker's log."""
        path = self.settings.var_dir / f"{name}.log"
        return path.read_text()[-4000:] if path.exists() else ""

    def logs(self) -> str:
        """The tails of every worker's log, for assertion messages."""
        names = [p.stem for p in self.settings.var_dir.glob("*.log")]
        return "\n".join(f"--- {n}\n{self.log(n)}" for n in names)

    def job_row(self, job_id: str) -> ChatJob:
        """The job's row as the database holds it now."""
        with session_scope(self.stack.resources.sessions) as session:
            job = session.get(ChatJob, uuid.UUID(job_id))
            assert job is not None
            return job

    def attempt_outcomes(self, kind: JobKind, job_id: str) -> list[str | None]:
        """How each attempt of the job ended, in order."""
        with session_scope(self.stack.resources.sessions) as session:
            return [a.outcome for a in job_attempts(session, kind, uuid.UUID(job_id))]

    def wait_for(self, headers: dict[str, str], job_ids: list[str], timeout: float) -> list[dict]:
        """Wait until every job is finished; their bodies."""
        finished: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while len(finished) < len(job_ids):
            if time.monotonic() > deadline:
                pending = [j for j in job_ids if j not in finished]
                raise AssertionError(f"jobs not finished: {pending}\n{self.logs()}")
            for job_id in job_ids:
                if job_id not in finished:
                    body = self.stack.client.get(f"/v1/chat/jobs/{job_id}", headers=headers)
                    job = body.get_json()
                    if job["status"] in ("completed", "incomplete", "failed", "cancelled"):
                        finished[job_id] = job
            time.sleep(0.2)
        return [finished[job_id] for job_id in job_ids]

    def streamed_answer(self, headers: dict[str, str], job_id: str) -> str:
        """The answer a client gets by joining the job's streamed deltas by the documented rule."""
        return join_answer(read_events(self.stack, headers, job_id))

    def stop(self) -> None:
        """Stop everything this deployment started."""
        for name in list(self.workers):
            self.kill_worker(name, signal.SIGTERM)
        self.stack.resources.close()
        self.sim.stop()
        self.redis.stop()


def start_fault_stack(tmp: Path, database_url: str | None = None, **overrides: Any) -> FaultStack:
    """A deployment with no worker yet, answering through the OpenAI SDK and a slow simulator."""
    redis = RedisServer(tmp / "redis", appendonly=True).start()
    sim = start_simulator(SimConfig(**SLOW_MODEL.to_dict()))
    settings = make_settings(
        tmp,
        redis.url,
        database_url,
        openai_api_key="sk-test",
        openai_base_url=f"{sim.url}/v1",
        openai_timeout_seconds=10.0,
        **{**FAST_RECOVERY, **overrides},
    )
    upgrade_database(settings)
    return FaultStack(Stack(settings=settings, app=create_app(settings)), redis, sim)


def wait_until(condition: Callable[[], bool], timeout: float, message: str) -> None:
    """Poll `condition` until it holds, or fail with `message`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.1)
