"""When the queue is unreachable, a submit is a clear 503 and the job is not left dangling."""

from __future__ import annotations

import socket
from pathlib import Path

from sqlalchemy import select

from common.jobs.queue import CHAT_QUEUE, waiting_job_ids
from common.platform.db import make_engine, make_session_factory
from common.platform.models import ChatJob
from tests.support.redis_server import RedisServer
from tests.support.stack import Stack, make_settings, start_stack
from tests.web.assertions import assert_problem


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def broker_at(stack: Stack, url: str) -> None:
    """Send this API's jobs to a broker at `url`; sessions and tokens stay on the stack's Redis.

    In production both are one Redis, and the failure tested here is that Redis dying between a
    request's token check and its enqueue; two servers let a test stop one at that point.
    """
    stack.resources.celery.conf.broker_url = url


def test_submit_with_the_broker_down_is_503_and_the_job_is_failed(tmp_path: Path) -> None:
    store = RedisServer(tmp_path / "redis").start()
    settings = make_settings(tmp_path, store.url)
    stack = start_stack(settings, with_worker=False)
    try:
        headers = stack.signup()
        broker_at(stack, f"redis://127.0.0.1:{closed_port()}/0")
        response = stack.client.post(
            "/v1/chat/jobs", json={"message": "What is a node?"}, headers=headers
        )
        assert_problem(response, 503, "service_unavailable")
        with make_session_factory(make_engine(settings))() as session:
            jobs = session.scalars(select(ChatJob)).all()
        assert [(job.status, job.error_code) for job in jobs] == [("failed", "queue_unavailable")]
    finally:
        stack.stop()
        store.stop()


def test_a_submit_refused_while_redis_was_down_runs_when_retried_with_its_key(
    tmp_path: Path,
) -> None:
    store = RedisServer(tmp_path / "redis").start()
    broker = RedisServer(tmp_path / "broker").start()
    stack = start_stack(make_settings(tmp_path, store.url), with_worker=False)
    try:
        headers = {**stack.signup(), "Idempotency-Key": "retry-me"}
        broker_at(stack, broker.url)
        body = {"message": "What is a node?", "selected_text": "A node is a process."}
        broker.stop()
        refused = stack.client.post("/v1/chat/jobs", json=body, headers=headers)
        assert_problem(refused, 503, "service_unavailable")
        assert refused.headers["Retry-After"]
        broker.start()

        retried = stack.client.post("/v1/chat/jobs", json=body, headers=headers)

        assert retried.status_code == 202, retried.get_json()
        assert "Idempotent-Replayed" not in retried.headers
        job = retried.get_json()
        assert (job["status"], job["error"]) == ("queued", None)
        celery = stack.resources.celery  # its broker is now `broker`
        assert waiting_job_ids(celery, CHAT_QUEUE) == {job["id"]}
        again = stack.client.post("/v1/chat/jobs", json=body, headers=headers)
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.get_json()["id"] == job["id"]
        assert waiting_job_ids(celery, CHAT_QUEUE) == {job["id"]}
    finally:
        stack.stop()
        broker.stop()
        store.stop()
