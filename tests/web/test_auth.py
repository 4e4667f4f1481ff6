"""Accounts: sign-up, login, refresh, /v1/me and how bad tokens are refused."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

import jwt
import pytest
from flask_jwt_extended import create_access_token
from werkzeug.test import TestResponse

from common.accounts import refresh_tokens
from tests.support.stack import Stack
from tests.web.assertions import assert_problem

PASSWORD = "correct-horse-battery"


def _email(name: str = "reader") -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}@example.com"


def _signup(stack: Stack, email: str, password: str = PASSWORD, **extra: Any) -> TestResponse:
    return stack.client.post(
        "/v1/auth/signup", json={"email": email, "password": password, **extra}
    )


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_signup_returns_tokens_and_the_user(idle_stack: Stack) -> None:
    email = _email()

    response = _signup(idle_stack, email, name="Ada")

    assert response.status_code == 201
    body = response.get_json()
    assert body["access_token"] and body["refresh_token"]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == idle_stack.settings.access_token_minutes * 60
    user = body["user"]
    assert user["object"] == "user"
    assert user["email"] == email
    assert user["name"] == "Ada"
    assert user["role"] == "user"
    assert uuid.UUID(user["id"]) and user["created_at"]


def test_duplicate_email_is_a_generic_conflict_whatever_its_case(idle_stack: Stack) -> None:
    email = _email()
    assert _signup(idle_stack, email).status_code == 201

    response = _signup(idle_stack, email.upper(), password="another-password")

    body = assert_problem(response, 409, "signup_failed")
    # No account enumeration beyond the status itself: the address is never echoed.
    assert email not in response.get_data(as_text=True).lower()
    assert body["detail"] == "an account cannot be created with these details"


def test_email_is_stored_lower_case(idle_stack: Stack) -> None:
    email = _email("MixedCase")

    body = _signup(idle_stack, email).get_json()

    assert body["user"]["email"] == email.lower()


def test_login_returns_tokens_that_work(idle_stack: Stack) -> None:
    email = _email()
    _signup(idle_stack, email)

    response = idle_stack.client.post(
        "/v1/auth/login", json={"email": email.upper(), "password": PASSWORD}
    )

    assert response.status_code == 200
    body = response.get_json()
    assert body["refresh_token"]
    me = idle_stack.client.get("/v1/me", headers=_bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.get_json()["email"] == email


@pytest.mark.parametrize("known_email", [True, False], ids=["wrong-password", "unknown-email"])
def test_bad_credentials_are_one_401(idle_stack: Stack, known_email: bool) -> None:
    email = _email()
    if known_email:
        _signup(idle_stack, email)

    response = idle_stack.client.post(
        "/v1/auth/login", json={"email": email, "password": "not-the-password"}
    )

    body = assert_problem(response, 401, "invalid_credentials")
    assert body["detail"] == "Invalid email or password"


def test_me_is_the_authenticated_user(idle_stack: Stack) -> None:
    email = _email()
    signed_up = _signup(idle_stack, email).get_json()

    response = idle_stack.client.get("/v1/me", headers=_bearer(signed_up["access_token"]))

    assert response.status_code == 200
    assert response.get_json() == signed_up["user"]


def test_refresh_token_buys_working_tokens_and_rotates(idle_stack: Stack) -> None:
    signed_up = _signup(idle_stack, _email()).get_json()

    response = idle_stack.client.post(
        "/v1/auth/refresh", headers=_bearer(signed_up["refresh_token"])
    )

    assert response.status_code == 200
    body = response.get_json()
    assert body["refresh_token"] and body["refresh_token"] != signed_up["refresh_token"]
    again = idle_stack.client.post("/v1/auth/refresh", headers=_bearer(body["refresh_token"]))
    assert again.status_code == 200
    me = idle_stack.client.get("/v1/me", headers=_bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.get_json()["id"] == signed_up["user"]["id"]


def test_refresh_token_is_not_an_access_token(idle_stack: Stack) -> None:
    signed_up = _signup(idle_stack, _email()).get_json()

    response = idle_stack.client.get("/v1/me", headers=_bearer(signed_up["refresh_token"]))

    assert_problem(response, 401, "invalid_token")


def test_access_token_is_not_a_refresh_token(idle_stack: Stack) -> None:
    signed_up = _signup(idle_stack, _email()).get_json()

    response = idle_stack.client.post(
        "/v1/auth/refresh", headers=_bearer(signed_up["access_token"])
    )

    assert_problem(response, 401, "invalid_token")


def test_missing_token_is_401_with_a_bearer_challenge(idle_stack: Stack) -> None:
    response = idle_stack.client.get("/v1/me")

    assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", ""])
def test_garbage_token_is_401_invalid_token(idle_stack: Stack, token: str) -> None:
    response = idle_stack.client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})

    assert_problem(response, 401, "invalid_token")
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_other_auth_schemes_are_401_unauthorized(idle_stack: Stack) -> None:
    response = idle_stack.client.get("/v1/me", headers={"Authorization": "Basic Zm9vOmJhcg=="})

    assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_token_signed_with_another_key_is_refused(idle_stack: Stack) -> None:
    user_id = _signup(idle_stack, _email()).get_json()["user"]["id"]
    claims = {"sub": user_id, "type": "access", "fresh": False, "jti": uuid.uuid4().hex}
    token = jwt.encode(claims, "another-secret-that-is-long-enough-for-hs256", algorithm="HS256")

    response = idle_stack.client.get("/v1/me", headers=_bearer(token))

    assert_problem(response, 401, "invalid_token")
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_expired_token_is_401_token_expired(idle_stack: Stack) -> None:
    user_id = _signup(idle_stack, _email()).get_json()["user"]["id"]
    with idle_stack.app.app_context():
        token = create_access_token(user_id, expires_delta=timedelta(seconds=-1))

    response = idle_stack.client.get("/v1/me", headers=_bearer(token))

    body = assert_problem(response, 401, "token_expired")
    assert body["detail"] == "the access token has expired"
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "short-pw@example.com", "password": "short"}, "password"),
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": "two@@example.com", "password": PASSWORD}, "email"),
        ({"password": PASSWORD}, "email"),
    ],
    ids=["short-password", "bad-email", "double-at", "missing-email"],
)
def test_invalid_signup_is_422_listing_the_field(
    idle_stack: Stack, body: dict[str, str], field: str
) -> None:
    response = idle_stack.client.post("/v1/auth/signup", json=body)

    problem = assert_problem(response, 422, "validation_error")
    assert [error["loc"] for error in problem["errors"]] == [[field]]
    assert all(error["msg"] and error["type"] for error in problem["errors"])


def test_logout_revokes_the_access_and_the_refresh_token(idle_stack: Stack) -> None:
    signed_up = _signup(idle_stack, _email()).get_json()
    access, refresh = _bearer(signed_up["access_token"]), _bearer(signed_up["refresh_token"])

    response = idle_stack.client.post("/v1/auth/logout", headers=access)

    assert response.status_code == 204
    assert_problem(idle_stack.client.get("/v1/me", headers=access), 401, "invalid_token")
    assert_problem(idle_stack.client.post("/v1/auth/refresh", headers=refresh), 401)


def test_logout_leaves_other_sessions_signed_in(idle_stack: Stack) -> None:
    email = _email()
    first = _signup(idle_stack, email).get_json()
    login = {"email": email, "password": PASSWORD}
    second = idle_stack.client.post("/v1/auth/login", json=login).get_json()

    idle_stack.client.post("/v1/auth/logout", headers=_bearer(first["access_token"]))

    assert (
        idle_stack.client.get("/v1/me", headers=_bearer(second["access_token"])).status_code == 200
    )


def test_deleting_the_account_removes_it_and_its_tokens(idle_stack: Stack) -> None:
    email = _email()
    signed_up = _signup(idle_stack, email).get_json()
    headers = _bearer(signed_up["access_token"])
    job = idle_stack.submit(headers, message="What is a node?")
    events_key = f"bookchat:job:{job['id']}:events"
    assert idle_stack.resources.redis.exists(events_key)

    response = idle_stack.client.delete("/v1/me", headers=headers)

    assert response.status_code == 204
    assert not idle_stack.resources.redis.exists(events_key)
    assert_problem(idle_stack.client.get("/v1/me", headers=headers), 401, "invalid_token")
    refresh = _bearer(signed_up["refresh_token"])
    assert_problem(idle_stack.client.post("/v1/auth/refresh", headers=refresh), 401)
    login = {"email": email, "password": PASSWORD}
    assert_problem(idle_stack.client.post("/v1/auth/login", json=login), 401)
    family = uuid.uuid4().hex  # a token the deletion missed, of a session still alive
    refresh_tokens.start_family(idle_stack.resources.redis, family, "unused", 600)
    with idle_stack.app.app_context():
        token = create_access_token(signed_up["user"]["id"], additional_claims={"fam": family})
    other = idle_stack.signup()
    assert_problem(idle_stack.client.get("/v1/me", headers=_bearer(token)), 401, "invalid_token")
    assert_problem(idle_stack.client.get(f"/v1/chat/jobs/{job['id']}", headers=other), 404)
    # The email is free again.
    assert _signup(idle_stack, email).status_code == 201


def test_passwords_are_never_logged_or_returned(
    idle_stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    password = f"distinctive-{uuid.uuid4().hex}"
    email = _email()
    caplog.set_level(logging.DEBUG)

    responses = [
        _signup(idle_stack, email, password=password),
        _signup(idle_stack, email, password=password),  # taken
        idle_stack.client.post("/v1/auth/login", json={"email": email, "password": password}),
        idle_stack.client.post("/v1/auth/login", json={"email": email, "password": password + "x"}),
        idle_stack.client.post("/v1/auth/signup", json={"email": "bad", "password": password}),
    ]

    assert [r.status_code for r in responses] == [201, 409, 200, 401, 422]
    for response in responses:
        assert password not in response.get_data(as_text=True)
    assert "POST /v1/auth/login" in caplog.text  # the capture works: requests were logged
    assert password not in caplog.text
    assert all(password not in str(record.args) for record in caplog.records)
