"""Request limits: logins, sign-ups and guest tokens per address, jobs per user.

The login throttles per account have their own tests (test_login_throttle.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from common.accounts.users import create_user
from common.platform.db import session_scope
from common.platform.migrate import upgrade_database
from common.platform.models import Role
from tests.support.stack import TEST_PASSWORD, Stack, make_settings
from tests.web.assertions import assert_problem
from web import create_app

JOBS = "/v1/chat/jobs"
LOGINS_PER_ADDRESS = 4
SIGNUPS = 2
GUESTS = 2
SUBMITS = 3
GUEST_SUBMITS = 2
SMALL_LIMITS = {
    "rate_limit_signup": f"{SIGNUPS}/minute",
    "rate_limit_login": f"{LOGINS_PER_ADDRESS}/minute",
    "rate_limit_guest": f"{GUESTS}/hour",
    "rate_limit_submit": f"{SUBMITS}/minute",
    "rate_limit_guest_submit": f"{GUEST_SUBMITS}/minute",
}


@pytest.fixture(scope="module")
def app(idle_stack: Stack) -> Iterator[Flask]:
    """The app from the factory with small limits, on the idle stack's database and Redis."""
    limited = create_app(idle_stack.settings.model_copy(update=SMALL_LIMITS))
    yield limited
    limited.extensions["bookchat"].close()


def client_from(app: Flask, address: str | None = None) -> FlaskClient:
    """A test client whose requests come from `address` (a fresh one by default)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address or new_address()
    return client


def new_address() -> str:
    """An IPv4 address no other test uses: the limits' keys stay apart in the shared Redis."""
    a, b, c = uuid.uuid4().bytes[:3]
    return f"10.{a}.{b}.{c}"


def new_email() -> str:
    return f"limits-{uuid.uuid4().hex[:10]}@example.com"


def signup(app: Flask, email: str) -> TestResponse:
    body = {"email": email, "password": TEST_PASSWORD}
    return client_from(app).post("/v1/auth/signup", json=body)


def login(client: FlaskClient, email: str, password: str) -> TestResponse:
    return client.post("/v1/auth/login", json={"email": email, "password": password})


def assert_rate_limited(
    response: TestResponse, scope: str, code: str = "rate_limited"
) -> dict[str, object]:
    """A 429 problem naming the limit, with a Retry-After in seconds."""
    body = assert_problem(response, 429, code)
    assert body["scope"] == scope
    assert int(response.headers["Retry-After"]) >= 1
    assert body["retry_after"] == int(response.headers["Retry-After"])
    return body


def guest_headers(stack: Stack) -> dict[str, str]:
    """A new guest's Authorization header, from POST /v1/auth/guest on the generous app."""
    response = stack.client.post("/v1/auth/guest")
    assert response.status_code == 201, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def test_successful_logins_are_not_failures(app: Flask) -> None:
    email = new_email()
    assert signup(app, email).status_code == 201

    client = client_from(app)

    statuses = [login(client, email.upper(), TEST_PASSWORD).status_code for _ in range(3)]

    assert statuses == [200] * 3


def test_logins_are_limited_per_address_across_accounts(app: Flask) -> None:
    client = client_from(app)
    for _ in range(LOGINS_PER_ADDRESS):
        assert login(client, new_email(), "wrong-guess").status_code == 401

    refused = login(client, new_email(), "wrong-guess")

    body = assert_rate_limited(refused, "login-ip")
    assert "login attempts from this address" in str(body["detail"])
    assert login(client_from(app), new_email(), "wrong-guess").status_code == 401


def test_signups_are_limited_per_address(app: Flask) -> None:
    client = client_from(app)
    accepted = [
        client.post("/v1/auth/signup", json={"email": new_email(), "password": TEST_PASSWORD})
        for _ in range(SIGNUPS)
    ]

    refused = client.post("/v1/auth/signup", json={"email": new_email(), "password": TEST_PASSWORD})

    assert [r.status_code for r in accepted] == [201] * SIGNUPS
    assert accepted[0].headers["X-RateLimit-Limit"] == str(SIGNUPS)
    assert accepted[0].headers["X-RateLimit-Remaining"] == str(SIGNUPS - 1)
    assert "Retry-After" not in accepted[0].headers  # only a refusal says when to retry
    assert_rate_limited(refused, "signup-ip")
    assert signup(app, new_email()).status_code == 201  # another address is not limited


def test_a_malformed_login_counts_and_is_still_a_4xx(app: Flask) -> None:
    client = client_from(app)
    statuses = [
        client.post("/v1/auth/login", json={"email": ["not", "a", "string"]}).status_code
        for _ in range(LOGINS_PER_ADDRESS)
    ]

    refused = client.post("/v1/auth/login", json={"password": "no email"})

    assert statuses == [422] * LOGINS_PER_ADDRESS
    assert_rate_limited(refused, "login-ip")


def test_guest_tokens_are_limited_per_address(app: Flask) -> None:
    client = client_from(app)
    accepted = [client.post("/v1/auth/guest").status_code for _ in range(GUESTS)]

    refused = client.post("/v1/auth/guest")

    assert accepted == [201] * GUESTS
    assert_rate_limited(refused, "guest-ip", "guest_limit_reached")


def test_job_submissions_are_limited_per_user(app: Flask, idle_stack: Stack) -> None:
    headers, other = idle_stack.signup(), idle_stack.signup()
    client = client_from(app)
    for n in range(SUBMITS):
        accepted = client.post(JOBS, json={"message": f"q{n}"}, headers=headers)
        assert accepted.status_code == 202, accepted.get_json()
        assert accepted.headers["Retry-After"] == "1"  # the polling hint survives the limiter

    refused = client_from(app).post(JOBS, json={"message": "one more"}, headers=headers)

    body = assert_rate_limited(refused, "jobs-user")
    assert "jobs submitted by this user" in str(body["detail"])
    assert client.post(JOBS, json={"message": "mine"}, headers=other).status_code == 202


def test_guests_have_their_own_submit_limit(app: Flask, idle_stack: Stack) -> None:
    headers = guest_headers(idle_stack)
    client = client_from(app)
    for n in range(GUEST_SUBMITS):
        accepted = client.post(JOBS, json={"message": f"q{n}"}, headers=headers)
        assert accepted.status_code == 202, accepted.get_json()

    refused = client.post(JOBS, json={"message": "one more"}, headers=headers)

    assert_rate_limited(refused, "jobs-guest")


def test_admins_are_exempt_from_the_submit_limit(app: Flask, idle_stack: Stack) -> None:
    headers = idle_stack.admin()
    client = client_from(app)

    statuses = [
        client.post(JOBS, json={"message": f"q{n}"}, headers=headers).status_code
        for n in range(SUBMITS + 2)
    ]

    assert statuses == [202] * (SUBMITS + 2)


def test_signed_out_submits_are_401_not_limited(app: Flask) -> None:
    client = client_from(app)

    responses = [client.post(JOBS, json={"message": "hi"}) for _ in range(SUBMITS + 1)]

    for response in responses:
        assert_problem(response, 401)


def test_without_redis_limits_let_requests_through_but_logins_are_503(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "redis://127.0.0.1:1/0", **SMALL_LIMITS)
    upgrade_database(settings)
    app = create_app(settings)
    email = new_email()
    try:
        with session_scope(app.extensions["bookchat"].sessions) as session:
            create_user(session, email, TEST_PASSWORD, "Reader", Role.USER)
        client = client_from(app)
        guesses = [login(client, email, "wrong-guess") for _ in range(LOGINS_PER_ADDRESS + 1)]
        signed_up = client.post(
            "/v1/auth/signup", json={"email": new_email(), "password": "x" * 12}
        )
    finally:
        app.extensions["bookchat"].close()

    for guess in guesses:  # login counts fail closed: 503 before the password is checked
        assert_problem(guess, 503, "redis_unavailable")
    assert signed_up.status_code in (201, 503), signed_up.get_json()


@pytest.mark.parametrize("path", ["/v1/auth/signup", "/v1/auth/login"])
def test_the_openapi_document_declares_the_429_of_limited_logins_and_signups(
    app: Flask, path: str
) -> None:
    document = app.test_client().get("/docs/openapi.json").get_json()

    declared = document["paths"][path]["post"]["responses"]

    assert "application/problem+json" in declared["429"]["content"]
