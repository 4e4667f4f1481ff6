"""The admin page's sign-in goes through the API's login throttle and per-address limit."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from common.platform.models import Role
from tests.support.stack import TEST_PASSWORD, Stack
from tests.web.admin_page.helpers import make_account, set_cookies, sign_in
from web import create_app

FAILURES = 3
LOGINS_PER_ADDRESS = 6
LIMITS = {
    "rate_limit_login": f"{LOGINS_PER_ADDRESS}/minute",
    "rate_limit_login_failures": f"{FAILURES}/15 minutes",
    "rate_limit_login_account_failures": "100/15 minutes",
}


@pytest.fixture(scope="module")
def app(idle_stack: Stack) -> Iterator[Flask]:
    """The app with small login limits, on the idle stack's database and Redis."""
    limited = create_app(idle_stack.settings.model_copy(update=LIMITS))
    yield limited
    limited.extensions["bookchat"].close()


def _loopback() -> str:
    # An address of its own: the per-address counts stay apart in Redis.
    return f"127.{random.randrange(1, 255)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def _from(app: Flask, address: str | None = None) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address or _loopback()
    return client


def test_guessing_is_stopped_per_address_and_never_locks_the_admin_out(
    app: Flask, idle_stack: Stack
) -> None:
    email = make_account(idle_stack, Role.ADMIN)
    attacker = _from(app)
    guesses = [sign_in(attacker, email, "wrong-guess").status_code for _ in range(FAILURES)]

    refused = sign_in(attacker, email, TEST_PASSWORD)  # the right password, too late
    owner = sign_in(_from(app), email, TEST_PASSWORD)

    assert guesses == [401] * FAILURES
    assert refused.status_code == 429 and refused.mimetype == "text/html"
    assert int(refused.headers["Retry-After"]) >= 1
    assert "failed logins for this account" in refused.get_data(as_text=True)
    assert "bookchat_admin" not in set_cookies(refused)
    assert owner.status_code == 303 and "bookchat_admin" in set_cookies(owner)


def test_the_api_and_the_page_share_the_failure_count(app: Flask, idle_stack: Stack) -> None:
    email = make_account(idle_stack, Role.ADMIN)
    attacker = _from(app)
    for _ in range(FAILURES - 1):
        assert sign_in(attacker, email, "wrong-guess").status_code == 401
    body = {"email": email, "password": "wrong-guess"}
    assert attacker.post("/v1/auth/login", json=body).status_code == 401

    assert sign_in(attacker, email, TEST_PASSWORD).status_code == 429


def test_login_posts_count_against_the_address_limit(app: Flask, idle_stack: Stack) -> None:
    address = _loopback()
    statuses = [
        sign_in(_from(app, address), make_account(idle_stack, Role.ADMIN)).status_code
        for _ in range(LOGINS_PER_ADDRESS + 1)
    ]

    assert statuses[:LOGINS_PER_ADDRESS] == [303] * LOGINS_PER_ADDRESS
    assert statuses[-1] == 429
