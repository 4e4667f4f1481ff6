"""Token quotas and the daily budget through the API: reserved at submit, settled at the end."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from bench.openai_sim import SimulatorHandle
from common.accounts.quotas import budget_key, next_reset, spender_of, tokens_used
from common.book.token_estimates import estimate_answer_tokens
from common.platform.settings import Settings
from tests.support.stack import TEST_PASSWORD, Stack
from tests.web.assertions import assert_problem
from web import create_app

JOBS = "/v1/chat/jobs"
QUESTION = "What is a node?"


def estimate(settings: Settings, message: str = QUESTION) -> int:
    """What a first question reserves under these settings."""
    return estimate_answer_tokens(
        message,
        None,
        follow_up=False,
        passages=settings.retrieval_k,
        history_turns=settings.history_turns,
        max_output_tokens=settings.chat_max_tokens,
    )


@pytest.fixture
def make_app(idle_stack: Stack) -> Iterator[Any]:
    """Apps from the factory on a stack's database and Redis, with the quotas a test gives."""
    made: list[Flask] = []

    def build(stack: Stack = idle_stack, **limits: Any) -> Flask:
        app = create_app(stack.settings.model_copy(update=limits))
        made.append(app)
        return app

    yield build
    for app in made:
        app.extensions["bookchat"].close()


def address() -> str:
    """An address of the test's own: guests' allowances are per address."""
    return f"10.{random.randrange(1, 250)}.{random.randrange(250)}.{random.randrange(1, 250)}"


def submit(
    app: Flask, headers: dict[str, str], remote: str = "127.0.0.1", **body: Any
) -> TestResponse:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = remote
    return client.post(JOBS, json={"message": QUESTION, **body}, headers=headers)


def signup(stack: Stack, email: str) -> tuple[dict[str, str], uuid.UUID]:
    body = {"email": email, "password": TEST_PASSWORD}
    response = stack.client.post("/v1/auth/signup", json=body)
    assert response.status_code == 201, response.get_json()
    headers = {"Authorization": f"Bearer {response.get_json()['access_token']}"}
    return headers, uuid.UUID(stack.client.get("/v1/me", headers=headers).get_json()["id"])


def used(stack: Stack, settings: Settings, email: str) -> int:
    """Tokens counted today against the account with this email."""
    identity = spender_of(settings, uuid.uuid4(), "user", email).quotas[0][0]
    return tokens_used(stack.resources.redis, identity)


def assert_quota_exceeded(response: TestResponse, quota: int) -> None:
    """A 429 `token_quota_exceeded` that says the quota resets at the next UTC midnight."""
    body = assert_problem(response, 429, "token_quota_exceeded")
    midnight = next_reset()
    assert body["resets_at"] == midnight.isoformat()
    assert body["quota"] == quota and body["used"] + body["needed"] > quota
    retry_after = int(response.headers["Retry-After"])
    assert retry_after == body["retry_after"]
    assert abs(retry_after - (midnight - datetime.now(UTC)).total_seconds()) < 5


def test_a_submit_that_does_not_fit_the_quota_is_refused_with_the_reset_time(
    make_app: Any, idle_stack: Stack
) -> None:
    need = estimate(idle_stack.settings)
    app = make_app(user_daily_tokens=2 * need)
    headers = idle_stack.signup()

    assert [submit(app, headers).status_code for _ in range(2)] == [202, 202]
    assert_quota_exceeded(submit(app, headers), 2 * need)


def test_deleting_the_account_and_signing_up_again_keeps_the_days_count(
    make_app: Any, openai_stack: Stack, sim: SimulatorHandle
) -> None:
    settings = openai_stack.settings
    need = estimate(settings)
    email = f"again-{uuid.uuid4().hex[:10]}@example.com"
    headers, _ = signup(openai_stack, email)
    first = submit(make_app(openai_stack, user_daily_tokens=need), headers)
    assert first.status_code == 202, first.get_json()
    job = openai_stack.wait(headers, first.get_json()["id"])
    spent = job["usage"]["total_tokens"]
    assert job["status"] == "completed" and 0 < spent < need, job

    assert openai_stack.client.delete("/v1/me", headers=headers).status_code == 204
    headers, _ = signup(openai_stack, email)
    # A quota that holds what was spent plus one question less a token: the new account
    # starts where the deleted one stopped, so its question does not fit.
    quota = spent + need - 1
    refused = submit(make_app(openai_stack, user_daily_tokens=quota), headers)

    assert_quota_exceeded(refused, quota)
    assert used(openai_stack, settings.model_copy(update={"user_daily_tokens": quota}), email) == (
        spent
    )


def test_a_question_reserves_its_estimate_and_settles_its_real_usage(
    make_app: Any, openai_stack: Stack, sim: SimulatorHandle
) -> None:
    limits = {"user_daily_tokens": 10**6}
    app = make_app(openai_stack, **limits)
    counted = openai_stack.settings.model_copy(update=limits)
    email = f"payer-{uuid.uuid4().hex[:10]}@example.com"
    headers, _ = signup(openai_stack, email)
    sim.update_config(ttft_s=1.0)  # time to see the reservation before the answer settles it

    accepted = submit(app, headers)
    assert accepted.status_code == 202, accepted.get_json()
    assert used(openai_stack, counted, email) == estimate(counted)
    job = openai_stack.wait(headers, accepted.get_json()["id"])

    assert job["status"] == "completed", job
    spent = job["usage"]["total_tokens"]
    assert 0 < spent < estimate(counted)
    deadline = time.monotonic() + 10
    while used(openai_stack, counted, email) != spent and time.monotonic() < deadline:
        time.sleep(0.05)  # the worker settles right after it records the answer
    assert used(openai_stack, counted, email) == spent


def test_a_failed_job_gives_its_reservation_back(
    make_app: Any, openai_stack: Stack, sim: SimulatorHandle
) -> None:
    limits = {"user_daily_tokens": 10**6}
    app = make_app(openai_stack, **limits)
    email = f"unlucky-{uuid.uuid4().hex[:10]}@example.com"
    headers, _ = signup(openai_stack, email)
    sim.update_config(insufficient_quota=True)  # the provider refuses: no tokens spent

    job = openai_stack.wait(headers, submit(app, headers).get_json()["id"])

    assert job["status"] == "failed" and job["error"]["code"] == "insufficient_quota", job
    assert used(openai_stack, openai_stack.settings.model_copy(update=limits), email) == 0


def test_cancelling_a_queued_job_gives_its_reservation_back(
    make_app: Any, idle_stack: Stack
) -> None:
    limits = {"user_daily_tokens": 10**6}
    app = make_app(**limits)
    email = f"changed-mind-{uuid.uuid4().hex[:10]}@example.com"
    headers, _ = signup(idle_stack, email)
    counted = idle_stack.settings.model_copy(update=limits)
    job = submit(app, headers).get_json()
    assert used(idle_stack, counted, email) == estimate(counted)

    cancelled = app.test_client().post(f"{JOBS}/{job['id']}/cancel", headers=headers)

    assert cancelled.get_json()["status"] == "cancelled"
    assert used(idle_stack, counted, email) == 0


def test_concurrent_submits_cannot_pass_the_quota(make_app: Any, idle_stack: Stack) -> None:
    need = estimate(idle_stack.settings)
    app = make_app(user_daily_tokens=3 * need)
    headers = idle_stack.signup()
    statuses: list[int] = []
    start = threading.Barrier(8)

    def one() -> None:
        start.wait()
        statuses.append(submit(app, headers).status_code)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [202] * 3 + [429] * 5


def test_new_guests_from_one_address_share_its_allowance(make_app: Any, idle_stack: Stack) -> None:
    need = estimate(idle_stack.settings)
    app = make_app(guest_daily_tokens=10 * need, guest_address_daily_tokens=2 * need)
    here, elsewhere = address(), address()

    def guest() -> dict[str, str]:
        token = idle_stack.client.post("/v1/auth/guest").get_json()["access_token"]
        return {"Authorization": f"Bearer {token}"}

    assert [submit(app, guest(), here).status_code for _ in range(2)] == [202, 202]
    assert_quota_exceeded(submit(app, guest(), here), 2 * need)  # a new guest: same address
    assert submit(app, guest(), elsewhere).status_code == 202


def test_a_guest_over_its_own_quota_is_refused(make_app: Any, idle_stack: Stack) -> None:
    need = estimate(idle_stack.settings)
    app = make_app(guest_daily_tokens=need, guest_address_daily_tokens=10 * need)
    token = idle_stack.client.post("/v1/auth/guest").get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}

    assert submit(app, headers, address()).status_code == 202
    assert_quota_exceeded(submit(app, headers, address()), need)  # another address: same guest


def test_admins_have_no_quota(make_app: Any, idle_stack: Stack) -> None:
    app = make_app(user_daily_tokens=1)

    assert submit(app, idle_stack.admin()).status_code == 202


def test_a_spent_budget_refuses_every_submit_with_503_until_midnight(
    make_app: Any, idle_stack: Stack
) -> None:
    need = estimate(idle_stack.settings)
    app = make_app(llm_daily_token_budget=need)
    redis = idle_stack.resources.redis
    redis.delete(budget_key())
    try:
        assert submit(app, idle_stack.signup()).status_code == 202
        refused = submit(app, idle_stack.admin())  # the budget binds admins too

        body = assert_problem(refused, 503, "budget_exhausted")
        assert body["type"].endswith("/budget_exhausted")
        assert body["resets_at"] == next_reset().isoformat()
        retry_after = int(refused.headers["Retry-After"])
        assert abs(retry_after - (next_reset() - datetime.now(UTC)).total_seconds()) < 5
    finally:
        redis.delete(budget_key())
