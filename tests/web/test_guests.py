"""Guests try the chat with a short-lived token, and keep their conversations by signing up."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from flask import Flask
from sqlalchemy import update

from common.accounts.guest_retention import purge_old_guests
from common.platform.db import session_scope
from common.platform.models import ChatJob, Conversation, User, utcnow
from common.platform.settings import Settings
from tests.support.stack import TEST_PASSWORD, Stack
from tests.web.assertions import assert_problem
from web import create_app

CLASS_SIZE = 40  # readers behind one school router


def _guest(stack: Stack) -> dict[str, Any]:
    response = stack.client.post("/v1/auth/guest")
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_guest_token_is_short_lived_access_only(idle_stack: Stack) -> None:
    body = _guest(idle_stack)

    assert body.get("refresh_token") is None
    assert body["expires_in"] == idle_stack.settings.guest_token_minutes * 60
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["role"] == "guest"
    assert claims["exp"] - claims["iat"] == idle_stack.settings.guest_token_minutes * 60
    me = idle_stack.client.get("/v1/me", headers=_bearer(body["access_token"])).get_json()
    assert me["role"] == "guest" and me["email"] is None


def test_a_guest_can_chat_and_read_its_own_jobs(idle_stack: Stack) -> None:
    guest = _bearer(_guest(idle_stack)["access_token"])
    stranger = _bearer(_guest(idle_stack)["access_token"])

    job = idle_stack.submit(guest, message="What is a node?")

    assert idle_stack.client.get(f"/v1/chat/jobs/{job['id']}", headers=guest).status_code == 200
    listing = idle_stack.client.get("/v1/conversations", headers=guest).get_json()
    assert [c["id"] for c in listing["data"]] == [job["conversation_id"]]
    assert_problem(idle_stack.client.get(f"/v1/chat/jobs/{job['id']}", headers=stranger), 404)


def test_a_guest_cannot_refresh_or_use_admin_routes(idle_stack: Stack) -> None:
    guest = _bearer(_guest(idle_stack)["access_token"])

    assert_problem(idle_stack.client.post("/v1/auth/refresh", headers=guest), 401)
    assert_problem(idle_stack.client.get("/v1/admin/ingest", headers=guest), 403)


def test_signing_up_adopts_the_guests_conversations(idle_stack: Stack) -> None:
    guest_token = _guest(idle_stack)["access_token"]
    job = idle_stack.submit(_bearer(guest_token), message="What is a node?")
    email = f"adopter-{uuid.uuid4().hex[:10]}@example.com"

    response = idle_stack.client.post(
        "/v1/auth/signup",
        json={"email": email, "password": TEST_PASSWORD},
        headers=_bearer(guest_token),
    )

    assert response.status_code == 201, response.get_json()
    user = _bearer(response.get_json()["access_token"])
    assert idle_stack.client.get(f"/v1/chat/jobs/{job['id']}", headers=user).status_code == 200
    listing = idle_stack.client.get("/v1/conversations", headers=user).get_json()
    assert [c["id"] for c in listing["data"]] == [job["conversation_id"]]
    # The guest is gone, and its token with it.
    assert_problem(idle_stack.client.get("/v1/me", headers=_bearer(guest_token)), 401)


def test_logging_in_adopts_the_guests_conversations(idle_stack: Stack) -> None:
    email = f"returning-{uuid.uuid4().hex[:10]}@example.com"
    signup = {"email": email, "password": TEST_PASSWORD}
    assert idle_stack.client.post("/v1/auth/signup", json=signup).status_code == 201
    guest_token = _guest(idle_stack)["access_token"]
    job = idle_stack.submit(_bearer(guest_token), message="What is a topic?")

    response = idle_stack.client.post("/v1/auth/login", json=signup, headers=_bearer(guest_token))

    assert response.status_code == 200
    user = _bearer(response.get_json()["access_token"])
    assert idle_stack.client.get(f"/v1/chat/jobs/{job['id']}", headers=user).status_code == 200


def test_a_users_token_at_login_adopts_nothing(idle_stack: Stack) -> None:
    owner = idle_stack.signup()
    job = idle_stack.submit(owner, message="What is a node?")
    email = f"other-{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "password": TEST_PASSWORD}

    response = idle_stack.client.post("/v1/auth/signup", json=body, headers=owner)

    assert response.status_code == 201
    other = _bearer(response.get_json()["access_token"])
    assert_problem(idle_stack.client.get(f"/v1/chat/jobs/{job['id']}", headers=other), 404)
    assert idle_stack.client.get(f"/v1/chat/jobs/{job['id']}", headers=owner).status_code == 200


def test_a_bad_token_at_signup_is_401_and_creates_nothing(idle_stack: Stack) -> None:
    email = f"nobody-{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "password": TEST_PASSWORD}

    response = idle_stack.client.post("/v1/auth/signup", json=body, headers=_bearer("a.b.c"))

    assert_problem(response, 401, "invalid_token")
    assert idle_stack.client.post("/v1/auth/login", json=body).status_code == 401


def _classroom_app(stack: Stack, guest_limit: str | None = None) -> Flask:
    """The app on the stack's database with the shipped guest limit (or the one given)."""
    limit = guest_limit or Settings.model_fields["rate_limit_guest"].default
    return create_app(stack.settings.model_copy(update={"rate_limit_guest": limit}))


def _guest_from(app: Flask, address: str) -> Any:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client.post("/v1/auth/guest")


def test_a_class_behind_one_router_gets_guests_for_a_lesson_with_renewals(
    idle_stack: Stack,
) -> None:
    app = _classroom_app(idle_stack)
    try:
        # Each reader's first token, then the renewal when its hour runs out mid-lesson.
        statuses = [_guest_from(app, "10.40.0.1").status_code for _ in range(2 * CLASS_SIZE)]
    finally:
        app.extensions["bookchat"].close()

    assert statuses == [201] * (2 * CLASS_SIZE)


def test_the_guest_limit_has_its_own_code_and_says_when_it_frees_up(idle_stack: Stack) -> None:
    app = _classroom_app(idle_stack, "2/hour")
    try:
        accepted = [_guest_from(app, "10.40.0.2").status_code for _ in range(2)]
        asked = datetime.now(UTC)
        refused = _guest_from(app, "10.40.0.2")
        elsewhere = _guest_from(app, "10.40.0.3")
    finally:
        app.extensions["bookchat"].close()

    assert accepted == [201, 201]
    body = assert_problem(refused, 429, "guest_limit_reached")
    assert body["scope"] == "guest-ip" and body["limit"] == "2 per 1 hour"
    assert "guest tokens from this address" in body["detail"]
    retry_after = int(refused.headers["Retry-After"])
    assert body["retry_after"] == retry_after and 1 <= retry_after <= 3600 + 1  # +1: rounding
    # resets_at is the same moment as Retry-After, as a time a reader's clock can show.
    resets_at = datetime.fromisoformat(body["resets_at"])
    assert abs(resets_at - (asked + timedelta(seconds=retry_after))) <= timedelta(seconds=2)
    assert elsewhere.status_code == 201  # per address


def test_a_guest_past_its_retention_is_purged_with_its_conversations(idle_stack: Stack) -> None:
    old_token, new_token = _guest(idle_stack)["access_token"], _guest(idle_stack)["access_token"]
    old, new = _bearer(old_token), _bearer(new_token)
    old_job = idle_stack.submit(old, message="What is a node?")
    new_job = idle_stack.submit(new, message="What is a topic?")
    old_id = uuid.UUID(jwt.decode(old_token, options={"verify_signature": False})["sub"])
    retention = idle_stack.settings.guest_retention_days
    with session_scope(idle_stack.resources.sessions) as session:
        session.execute(
            update(User)
            .where(User.id == old_id)
            .values(created_at=utcnow() - timedelta(days=retention, minutes=1))
        )

    with session_scope(idle_stack.resources.sessions) as session:
        purged = purge_old_guests(session, utcnow(), retention)

    assert old_id in purged
    assert_problem(idle_stack.client.get("/v1/me", headers=old), 401)
    with session_scope(idle_stack.resources.sessions) as session:
        assert session.get(ChatJob, uuid.UUID(old_job["id"])) is None
        assert session.get(Conversation, uuid.UUID(old_job["conversation_id"])) is None
    assert idle_stack.client.get(f"/v1/chat/jobs/{new_job['id']}", headers=new).status_code == 200
