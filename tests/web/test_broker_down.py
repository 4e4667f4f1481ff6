"""When the queue is unreachable, a submit is a clear 503 and the job is not left dangling."""

from __future__ import annotations

import socket
from pathlib import Path

from sqlalchemy import select

from common.db import make_engine, make_session_factory
from common.models import ChatJob
from tests.support.stack import make_settings, start_stack
from tests.web.assertions import assert_problem


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_submit_with_the_broker_down_is_503_and_the_job_is_failed(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"redis://127.0.0.1:{closed_port()}/0")
    stack = start_stack(settings, with_worker=False)
    try:
        headers = stack.signup()
        response = stack.client.post(
            "/v1/chat/jobs", json={"message": "What is a node?"}, headers=headers
        )
        assert_problem(response, 503, "service_unavailable")
        with make_session_factory(make_engine(settings))() as session:
            jobs = session.scalars(select(ChatJob)).all()
        assert [(job.status, job.error_code) for job in jobs] == [("failed", "queue_unavailable")]
    finally:
        stack.stop()
