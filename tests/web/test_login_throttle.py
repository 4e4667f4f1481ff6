"""Login throttles an attacker cannot turn against the owner, and no oracle while Redis is away.

Several loopback source addresses (REMOTE_ADDR) stand in for networks: the attacker's and the
owner's. The app comes from the factory, on a real Redis.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections.abc import Iterator
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server
from werkzeug.test import TestResponse

from common.accounts.users import create_user
from common.platform.db import session_scope
from common.platform.migrate import upgrade_database
from common.platform.models import Role
from tests.support.redis_server import RedisServer
from tests.support.stack import TEST_PASSWORD, Stack, make_settings
from tests.web.assertions import assert_problem, assert_unavailable
from web import create_app
from web.login_throttle import LoginThrottle

FAILURES = 3  # per (account, address)
ACCOUNT_FAILURES = 4  # per account, from any address: slows down, never refuses
LOGINS_PER_ADDRESS = 8
LOGIN_LIMITS: dict[str, Any] = {
    "rate_limit_login": f"{LOGINS_PER_ADDRESS}/minute",
    "rate_limit_login_failures": f"{FAILURES}/15 minutes",
    "rate_limit_login_account_failures": f"{ACCOUNT_FAILURES}/15 minutes",
    "login_slowdown_seconds": 0.01,  # the pause itself is not what these tests measure
}


@pytest.fixture(scope="module")
def app(idle_stack: Stack) -> Iterator[Flask]:
    """The app from the factory with small login limits, on the idle stack's database and Redis."""
    limited = create_app(idle_stack.settings.model_copy(update=LOGIN_LIMITS))
    yield limited
    limited.extensions["bookchat"].close()


def loopback() -> str:
    """A loopback address no other test uses: the per-address keys stay apart in Redis."""
    return f"127.{random.randrange(1, 255)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def client_from(app: Flask, address: str) -> FlaskClient:
    """A test client whose requests come from `address`."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def new_email() -> str:
    return f"throttle-{uuid.uuid4().hex[:10]}@example.com"


def signed_up(app: Flask) -> str:
    """A new account's email (its password is TEST_PASSWORD)."""
    email = new_email()
    body = {"email": email, "password": TEST_PASSWORD}
    assert client_from(app, loopback()).post("/v1/auth/signup", json=body).status_code == 201
    return email


def login(client: FlaskClient, email: str, password: str, **headers: str) -> TestResponse:
    body = {"email": email, "password": password}
    return client.post("/v1/auth/login", json=body, headers=headers)


def throttle_of(app: Flask) -> LoginThrottle:
    throttle: LoginThrottle = app.extensions["bookchat.login_throttle"]
    return throttle


def assert_rate_limited(response: TestResponse, scope: str) -> dict[str, object]:
    """A 429 problem naming the limit, with a Retry-After in seconds."""
    body = assert_problem(response, 429, "rate_limited")
    assert body["scope"] == scope
    assert int(response.headers["Retry-After"]) >= 1
    assert body["retry_after"] == int(response.headers["Retry-After"])
    return body


def test_an_attackers_failures_never_lock_the_owner_out(app: Flask) -> None:
    email = signed_up(app)
    attacker = client_from(app, loopback())
    for _ in range(FAILURES):
        assert login(attacker, email, "wrong-guess").status_code == 401

    refused = login(attacker, email, "wrong-guess")
    refused_right_password = login(attacker, email, TEST_PASSWORD)
    owner = login(client_from(app, loopback()), email, TEST_PASSWORD)

    assert owner.status_code == 200, owner.get_json()
    body = assert_rate_limited(refused, "login-failures")
    assert "failed logins for this account from this address" in str(body["detail"])
    assert_rate_limited(refused_right_password, "login-failures")  # per (account, address)


def _login_over_tcp(port: int, source: str, email: str, password: str) -> int:
    connection = HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        body = json.dumps({"email": email, "password": password})
        connection.request(
            "POST", "/v1/auth/login", body, headers={"Content-Type": "application/json"}
        )
        return connection.getresponse().status
    finally:
        connection.close()


def test_over_real_sockets_the_attacker_address_is_refused_and_the_owner_is_not(
    app: Flask,
) -> None:
    # The source address comes from the TCP connection itself, not from a test-client setting.
    email = signed_up(app)
    attacker, owner = loopback(), loopback()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        guesses = [
            _login_over_tcp(server.port, attacker, email, "wrong-guess") for _ in range(FAILURES)
        ]
        refused = _login_over_tcp(server.port, attacker, email, TEST_PASSWORD)
        signed_in = _login_over_tcp(server.port, owner, email, TEST_PASSWORD)
    finally:
        server.shutdown()
        thread.join()

    assert guesses == [401] * FAILURES
    assert refused == 429
    assert signed_in == 200


def test_the_attacker_can_still_try_other_accounts_within_the_address_limit(app: Flask) -> None:
    email, other = signed_up(app), signed_up(app)
    attacker = client_from(app, loopback())
    for _ in range(FAILURES):
        login(attacker, email, "wrong-guess")

    assert_rate_limited(login(attacker, email, "wrong-guess"), "login-failures")
    assert_problem(login(attacker, other, "wrong-guess"), 401, "invalid_credentials")


def test_the_right_password_clears_the_count_of_its_address(app: Flask) -> None:
    email = signed_up(app)
    owner = client_from(app, loopback())
    for _ in range(FAILURES - 1):  # typos
        assert login(owner, email, "typo").status_code == 401
    assert login(owner, email, TEST_PASSWORD).status_code == 200

    statuses = [login(owner, email, "typo").status_code for _ in range(FAILURES)]

    assert statuses == [401] * FAILURES
    assert_rate_limited(login(owner, email, "typo"), "login-failures")


def test_failures_from_many_addresses_slow_the_account_but_never_refuse_it(app: Flask) -> None:
    email = signed_up(app)
    throttle = throttle_of(app)
    statuses = [
        login(client_from(app, loopback()), email, "wrong-guess").status_code
        for _ in range(ACCOUNT_FAILURES + 2)
    ]

    owner = login(client_from(app, loopback()), email, TEST_PASSWORD)
    another_guess = login(client_from(app, loopback()), email, "wrong-guess")

    assert statuses == [401] * (ACCOUNT_FAILURES + 2)
    assert throttle.under_attack(throttle.account(email))  # its logins now wait first
    assert not throttle.under_attack(throttle.account(signed_up(app)))
    assert owner.status_code == 200, owner.get_json()
    assert_problem(another_guess, 401, "invalid_credentials")


def test_spraying_many_accounts_from_one_address_is_throttled_per_address(app: Flask) -> None:
    sprayer = client_from(app, loopback())
    for _ in range(LOGINS_PER_ADDRESS):
        assert login(sprayer, new_email(), "Password1!").status_code == 401

    refused = login(sprayer, new_email(), "Password1!")

    body = assert_rate_limited(refused, "login-ip")
    assert "login attempts from this address" in str(body["detail"])
    assert login(client_from(app, loopback()), new_email(), "Password1!").status_code == 401


def test_an_ipv6_sprayer_cannot_rotate_through_its_own_network(app: Flask) -> None:
    # One subscriber holds a whole /64: each address in it is the same client for the limits.
    prefix = f"2001:db8:{random.randrange(65536):x}:{random.randrange(65536):x}"
    for n in range(LOGINS_PER_ADDRESS):
        sprayer = client_from(app, f"{prefix}::{n + 1:x}")
        assert login(sprayer, new_email(), "Password1!").status_code == 401

    refused = login(client_from(app, f"{prefix}:0:abcd:1234:5678"), new_email(), "Password1!")

    assert_rate_limited(refused, "login-ip")
    elsewhere = client_from(app, f"2001:db8:1:{random.randrange(65536):x}::1")
    assert login(elsewhere, new_email(), "Password1!").status_code == 401


def test_login_failure_keys_do_not_hold_the_email(app: Flask, idle_stack: Stack) -> None:
    email = signed_up(app)
    login(client_from(app, loopback()), email, "wrong-guess")
    redis = idle_stack.resources.redis

    keys = list(redis.scan_iter(count=1000))

    assert not [key for key in keys if email in key or email.split("@")[0] in key]
    assert [key for key in keys if throttle_of(app).account(email) in key]


def _same_answer(right: TestResponse, wrong: TestResponse) -> None:
    assert_unavailable(right, "redis_unavailable")
    assert right.status_code == wrong.status_code
    assert sorted(right.headers.items()) == sorted(wrong.headers.items())
    assert right.get_data() == wrong.get_data()


def _app_with_user(var_dir: Path, redis_url: str, email: str) -> Flask:
    var_dir.mkdir(parents=True, exist_ok=True)
    settings = make_settings(var_dir, redis_url, **LOGIN_LIMITS)
    upgrade_database(settings)
    outage_app = create_app(settings)
    with session_scope(outage_app.extensions["bookchat"].sessions) as session:
        create_user(session, email, TEST_PASSWORD, "Owner", Role.USER)
    return outage_app


def test_without_redis_right_and_wrong_passwords_get_the_same_503(tmp_path: Path) -> None:
    email = new_email()
    outage_app = _app_with_user(tmp_path, "redis://127.0.0.1:1/0", email)
    client = client_from(outage_app, loopback())
    try:
        # Past every limit, and each answer exactly the same: nothing checked the password.
        answers = [
            (
                login(client, email, TEST_PASSWORD, **{"X-Request-ID": f"outage-login-{n:04d}"}),
                login(client, email, "wrong-guess", **{"X-Request-ID": f"outage-login-{n:04d}"}),
            )
            for n in range(FAILURES + 1)
        ]
    finally:
        outage_app.extensions["bookchat"].close()

    for right, wrong in answers:
        _same_answer(right, wrong)


@pytest.mark.slow  # Redis frozen for seconds: a fault run
@pytest.mark.timeout(120)
def test_while_redis_is_frozen_right_and_wrong_passwords_get_the_same_503(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path / "redis").start()
    email = new_email()
    outage_app = _app_with_user(tmp_path / "app", server.url, email)
    client = client_from(outage_app, loopback())
    try:
        server.pause()
        right = login(client, email, TEST_PASSWORD, **{"X-Request-ID": "frozen-login-0001"})
        wrong = login(client, email, "wrong-guess", **{"X-Request-ID": "frozen-login-0001"})
        server.resume()
        thawed = login(client, email, TEST_PASSWORD)
    finally:
        server.stop()
        outage_app.extensions["bookchat"].close()

    _same_answer(right, wrong)
    assert thawed.status_code == 200, thawed.get_json()
