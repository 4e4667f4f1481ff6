"""Spend limits a real worker keeps: no model call once the day's budget is spent, old guests go.

A deployment of its own per test (Redis, the model simulator, a Celery worker started after
the test has set the stage), so a spent budget or a purge touches nothing else.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from common.accounts.quotas import budget_key, budget_used
from common.book.token_estimates import estimate_answer_tokens
from common.platform.db import session_scope
from common.platform.models import Conversation, Role, User, utcnow
from tests.support.faults import FaultStack, start_fault_stack, wait_until
from tests.web.assertions import assert_problem

pytestmark = [pytest.mark.timeout(180)]
QUESTION = "What is a ROS 2 node?"


def _estimate(deployment: FaultStack) -> int:
    settings = deployment.settings
    return estimate_answer_tokens(
        QUESTION,
        None,
        follow_up=False,
        passages=settings.retrieval_k,
        history_turns=settings.history_turns,
        max_output_tokens=settings.chat_max_tokens,
    )


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[FaultStack]:
    """A deployment with a daily budget of 10,000 tokens and an hourly guest purge."""
    made = start_fault_stack(
        tmp_path,
        llm_daily_token_budget=10_000,
        guest_retention_days=1,
        guest_purge_interval_seconds=1.0,
    )
    yield made
    made.stop()


def _chat_calls(deployment: FaultStack) -> list[dict[str, Any]]:
    return [r for r in deployment.sim.log() if r["endpoint"] == "/v1/chat/completions"]


def test_a_queued_job_makes_no_model_call_once_the_budget_is_spent(
    deployment: FaultStack,
) -> None:
    stack, redis = deployment.stack, deployment.stack.resources.redis
    headers = stack.signup()
    job = stack.submit(headers, message=QUESTION)  # queued: no worker yet
    assert budget_used(redis) == _estimate(deployment)
    redis.incrby(budget_key(), 10_000)  # other answers spent the rest, and more

    deployment.start_worker("frugal", concurrency=1)
    [finished] = deployment.wait_for(headers, [job["id"]], timeout=60)

    assert finished["status"] == "failed", finished
    assert finished["error"]["code"] == "budget_exhausted"
    assert "daily model budget is spent" in finished["error"]["message"]
    assert _chat_calls(deployment) == []
    assert budget_used(redis) == 10_000  # the failed job's reservation was given back
    refused = stack.client.post("/v1/chat/jobs", json={"message": QUESTION}, headers=headers)
    assert_problem(refused, 503, "budget_exhausted")


def _guest(deployment: FaultStack, age: timedelta) -> uuid.UUID:
    with session_scope(deployment.stack.resources.sessions) as session:
        guest = User(role=Role.GUEST.value, created_at=utcnow() - age)
        session.add(guest)
        session.flush()
        session.add(Conversation(user_id=guest.id, title="What is a node?"))
        return guest.id


def _exists(deployment: FaultStack, user_id: uuid.UUID) -> bool:
    with session_scope(deployment.stack.resources.sessions) as session:
        return session.get(User, user_id) is not None


def test_the_watchdog_purges_guests_past_their_retention(deployment: FaultStack) -> None:
    old, recent = _guest(deployment, timedelta(days=2)), _guest(deployment, timedelta(hours=2))

    deployment.start_worker("janitor", concurrency=1)

    wait_until(lambda: not _exists(deployment, old), 30, f"not purged: {deployment.logs()}")
    assert _exists(deployment, recent)
