"""Daily token quotas through the API: refused at submit with a reset time, charged on finish."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from bench.openai_sim import SimulatorHandle
from common.quotas import charge_tokens, next_reset, tokens_used
from tests.support.stack import Stack
from tests.web.assertions import assert_problem
from web import create_app

JOBS = "/v1/chat/jobs"
USER_TOKENS = 1000
GUEST_TOKENS = 100
QUOTAS = {"user_daily_tokens": USER_TOKENS, "guest_daily_tokens": GUEST_TOKENS}


@pytest.fixture(scope="module")
def app(idle_stack: Stack) -> Iterator[Flask]:
    """The app from the factory with small quotas, on the idle stack's database and Redis."""
    limited = create_app(idle_stack.settings.model_copy(update=QUOTAS))
    yield limited
    limited.extensions["bookchat"].close()


def user_id(stack: Stack, headers: dict[str, str]) -> uuid.UUID:
    """The id of the account behind the headers."""
    me = stack.client.get("/v1/me", headers=headers)
    assert me.status_code == 200, me.get_json()
    return uuid.UUID(me.get_json()["id"])


def guest(stack: Stack) -> tuple[dict[str, str], uuid.UUID]:
    """A new guest's Authorization header and id, from POST /v1/auth/guest."""
    response = stack.client.post("/v1/auth/guest")
    assert response.status_code == 201, response.get_json()
    headers = {"Authorization": f"Bearer {response.get_json()['access_token']}"}
    return headers, user_id(stack, headers)


def submit(app: Flask, headers: dict[str, str]) -> TestResponse:
    return app.test_client().post(JOBS, json={"message": "What is a node?"}, headers=headers)


def assert_quota_exceeded(response: TestResponse, quota: int) -> None:
    """A 429 `token_quota_exceeded` that says the quota resets at the next UTC midnight."""
    body = assert_problem(response, 429, "token_quota_exceeded")
    midnight = next_reset()
    assert body["resets_at"] == midnight.isoformat()
    assert body["quota"] == quota and body["used"] >= quota
    retry_after = int(response.headers["Retry-After"])
    assert retry_after == body["retry_after"]
    assert abs(retry_after - (midnight - datetime.now(UTC)).total_seconds()) < 5


def test_a_user_at_the_quota_is_refused_with_the_reset_time(app: Flask, idle_stack: Stack) -> None:
    headers = idle_stack.signup()
    owner = user_id(idle_stack, headers)
    redis = idle_stack.resources.redis
    charge_tokens(redis, owner, USER_TOKENS - 1)
    assert submit(app, headers).status_code == 202  # one token left is still a yes
    charge_tokens(redis, owner, 1)

    refused = submit(app, headers)

    assert_quota_exceeded(refused, USER_TOKENS)


def test_a_guest_over_its_quota_is_refused_with_the_reset_time(
    app: Flask, idle_stack: Stack
) -> None:
    headers, guest_id = guest(idle_stack)
    charge_tokens(idle_stack.resources.redis, guest_id, GUEST_TOKENS + 50)

    refused = submit(app, headers)

    assert_quota_exceeded(refused, GUEST_TOKENS)


def test_admins_have_no_quota(app: Flask, idle_stack: Stack) -> None:
    headers = idle_stack.admin()
    charge_tokens(idle_stack.resources.redis, user_id(idle_stack, headers), 10 * USER_TOKENS)

    assert submit(app, headers).status_code == 202


def test_a_finished_job_charges_its_real_tokens(openai_stack: Stack, sim: SimulatorHandle) -> None:
    # A quota of one token: the first question passes, its real usage then uses the day up.
    app = create_app(openai_stack.settings.model_copy(update={"user_daily_tokens": 1}))
    try:
        headers = openai_stack.signup()
        owner = user_id(openai_stack, headers)
        accepted = submit(app, headers)
        assert accepted.status_code == 202, accepted.get_json()
        job = openai_stack.wait(headers, accepted.get_json()["id"])
        assert job["status"] == "completed", job
        redis = openai_stack.resources.redis
        deadline = time.monotonic() + 10
        while tokens_used(redis, owner) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # the worker charges right after it records the answer

        assert tokens_used(redis, owner) == job["usage"]["total_tokens"] > 0
        assert_quota_exceeded(submit(app, headers), 1)
    finally:
        app.extensions["bookchat"].close()
