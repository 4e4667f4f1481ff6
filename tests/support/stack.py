"""A running bookchat for tests: the app from the factory and a real Celery worker process."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from pydantic import SecretStr
from sqlalchemy import select

from cli.processes import worker_command
from common.accounts.users import create_user
from common.jobs.ingest_jobs import queue_ingest_job, wait_for_ingest_job
from common.jobs.worker_heartbeats import live_workers
from common.platform.db import session_scope
from common.platform.migrate import upgrade_database
from common.platform.models import ChatJob, JobStatus, Role
from common.platform.redis_client import make_redis
from common.platform.settings import Settings
from web import create_app
from web.resources import WebResources
from web.serializers import ingest_job_body

if TYPE_CHECKING:
    from bench.openai_sim import SimulatorHandle

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_TEXTBOOK = REPO_ROOT / "examples" / "textbook"
JWT_TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"
TEST_PASSWORD = "pw-" * 4
# Tests sign up and submit far faster than people; limit tests override these.
GENEROUS_LIMITS: dict[str, Any] = {
    "rate_limit_signup": "100000/minute",
    "rate_limit_login": "100000/minute",
    "rate_limit_login_failures": "100000/minute",
    "rate_limit_login_account_failures": "100000/minute",
    "rate_limit_guest": "100000/minute",
    "rate_limit_submit": "100000/minute",
    "rate_limit_guest_submit": "100000/minute",
    "user_daily_tokens": 0,
    "guest_daily_tokens": 0,
    "guest_address_daily_tokens": 0,
    "llm_daily_token_budget": 0,
    # Stacks of one session share a database, and some leave jobs queued on purpose (no worker
    # drains them): admission would refuse every later test's submit once the oldest waited
    # past the default 300 s. tests/web/test_admission.py sets its own bounds.
    "admission_max_wait_seconds": 86400,
}


def make_settings(
    var_dir: Path, redis_url: str | None, database_url: str | None = None, **overrides: Any
) -> Settings:
    """Explicit settings that ignore the developer's environment and .env.

    Ingest roots: the sample book and pytest's temporary folder (the var_dir's parent), where
    tests build the books they ingest.
    """
    values: dict[str, Any] = {
        "environment": "test",
        "var_dir": var_dir,
        "redis_url": redis_url,
        "database_url": database_url,
        "qdrant_url": None,
        "openai_api_key": None,
        "openai_base_url": None,
        "jwt_secret_key": JWT_TEST_SECRET,
        "textbook_path": SAMPLE_TEXTBOOK,
        "ingest_roots": [SAMPLE_TEXTBOOK, var_dir.parent],
        "metrics_cache_seconds": 0,  # tests compare scrapes taken moments apart
        # Tests ask the same questions again and count model calls: the answer cache is on
        # only where a test says so (tests/workers/test_answer_cache.py).
        "answer_cache_enabled": False,
        **GENEROUS_LIMITS,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def settings_env(settings: Settings) -> dict[str, str]:
    """The same settings as environment variables for a child process."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in _SETTING_NAMES}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        listed = isinstance(value, list)  # INGEST_ROOTS and the like: JSON, paths as text
        env[name.upper()] = json.dumps(value, default=str) if listed else str(value)
    return env


_SETTING_NAMES = {name.upper() for name in Settings.model_fields}


@dataclass
class Stack:
    settings: Settings
    app: OpenAPI
    worker: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    _users: int = field(default=0)

    @property
    def client(self) -> FlaskClient:
        """A test client of the app."""
        return self.app.test_client()

    def signup(self, name: str = "reader") -> dict[str, str]:
        """A new account's Authorization header."""
        email = f"{name}-{uuid.uuid4().hex[:10]}@example.com"
        body = {"email": email, "password": TEST_PASSWORD}
        response = self.client.post("/v1/auth/signup", json=body)
        assert response.status_code == 201, response.get_json()
        return {"Authorization": f"Bearer {response.get_json()['access_token']}"}

    def admin(self) -> dict[str, str]:
        """A new administrator's Authorization header (made as `bookchat create-admin` does)."""
        email = f"admin-{uuid.uuid4().hex[:10]}@example.com"
        with session_scope(self.resources.sessions) as session:
            create_user(session, email, TEST_PASSWORD, "Admin", Role.ADMIN)
        login = {"email": email, "password": TEST_PASSWORD}
        response = self.client.post("/v1/auth/login", json=login)
        assert response.status_code == 200, response.get_json()
        return {"Authorization": f"Bearer {response.get_json()['access_token']}"}

    def submit(self, headers: dict[str, str], **body: Any) -> dict[str, Any]:
        """Submit a chat job and return its body."""
        response = self.client.post("/v1/chat/jobs", json=body, headers=headers)
        assert response.status_code == 202, response.get_json()
        return dict(response.get_json())

    def wait(self, headers: dict[str, str], job_id: str, timeout: float = 60) -> dict[str, Any]:
        """Long-poll until the job is finished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.client.get(f"/v1/chat/jobs/{job_id}?wait=10", headers=headers).get_json()
            if job["status"] in ("completed", "incomplete", "failed", "cancelled"):
                return dict(job)
        raise AssertionError(f"job {job_id} did not finish; worker log: {self.worker_log()}")

    def unfinished_jobs(self) -> list[str]:
        """Ids of the chat and chapter jobs still queued or running."""
        active = (JobStatus.QUEUED.value, JobStatus.IN_PROGRESS.value)
        with session_scope(self.resources.sessions) as session:
            ids = session.scalars(select(ChatJob.id).where(ChatJob.status.in_(active)))
            return [str(job_id) for job_id in ids]

    def wait_until_idle(self, timeout: float = 60) -> None:
        """Wait until no job is queued or running, so none outlives the test that made it."""
        deadline = time.monotonic() + timeout
        while unfinished := self.unfinished_jobs():
            if time.monotonic() > deadline:
                raise AssertionError(f"jobs left unfinished: {unfinished}; {self.worker_log()}")
            time.sleep(0.05)

    def worker_log(self) -> str:
        """The tail of the worker's output, for assertion messages."""
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text()[-4000:]
        return ""

    @property
    def resources(self) -> WebResources:
        """The app's database, Redis and Celery client."""
        res: WebResources = self.app.extensions["bookchat"]
        return res

    def ingest(
        self, path: Path, full: bool = False, timeout: float = 120, book: str | None = None
    ) -> dict[str, Any]:
        """Ingest a folder through the worker (as the CLI does) and return the finished job."""
        res = self.resources
        with session_scope(res.sessions) as session:
            job = queue_ingest_job(session, res.celery, str(path), full=full, book=book)
        finished = wait_for_ingest_job(res.sessions, job.id, timeout)
        if finished is None:
            raise AssertionError(f"ingest did not finish; worker log: {self.worker_log()}")
        return ingest_job_body(finished)

    def stop(self) -> None:
        """Stop the worker and release the app's pools."""
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()
            try:
                self.worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.worker.kill()
        self.resources.close()


def start_stack(
    settings: Settings,
    with_worker: bool = True,
    concurrency: int = 2,
    queues: Sequence[str] = ("chat", "ingest"),
) -> Stack:
    """Migrate, build the app, and start a worker process that has ingested the sample book."""
    upgrade_database(settings)
    stack = Stack(settings=settings, app=create_app(settings))
    if not with_worker:
        return stack
    hostname = f"test-{uuid.uuid4().hex[:8]}@bookchat"
    stack.log_path = settings.var_dir / "worker.log"
    with stack.log_path.open("wb") as log:
        stack.worker = subprocess.Popen(
            worker_command(list(queues), concurrency, hostname, "INFO"),
            env=settings_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )
    client = make_redis(settings)
    deadline = time.monotonic() + 60
    while not any(w["name"] == hostname for w in live_workers(client)):
        if stack.worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"worker did not start: {stack.worker_log()}")
        time.sleep(0.1)
    job = stack.ingest(SAMPLE_TEXTBOOK)
    if job["status"] != "completed":
        raise RuntimeError(f"the sample book was not ingested: {job}; {stack.worker_log()}")
    return stack


class NewStack(Protocol):
    """The `new_stack` fixture: starts a stack of its own, stopped when its `with` block ends.

    Each gets a Redis database of its own and, unless `var_dir` is given, a fresh folder `name`
    under pytest's temporary root; its worker serves `queues`; `overrides` are settings (see
    `make_settings`).
    """

    def __call__(
        self,
        name: str,
        *,
        var_dir: Path | None = None,
        database_url: str | None = None,
        with_worker: bool = True,
        queues: Sequence[str] = ("chat", "ingest"),
        **overrides: Any,
    ) -> AbstractContextManager[Stack]: ...


def simulator_settings(simulator: SimulatorHandle) -> dict[str, Any]:
    """Settings that send model calls through the OpenAI SDK to the simulator."""
    return {
        "openai_api_key": "sk-test",
        "openai_base_url": f"{simulator.url}/v1",
        "openai_timeout_seconds": 5.0,
    }
