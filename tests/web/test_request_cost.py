"""What an authenticated request costs: one token decode, no read of the account's row, and
the account's cached role still refused at once after a demotion or a deletion."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import redis.connection
from sqlalchemy import event

from common.jobs.queue import CHAT_QUEUE, waiting_job_ids
from common.platform.migrate import upgrade_database
from tests.support.stack import TEST_PASSWORD, Stack, make_settings
from tests.web.assertions import assert_problem
from web import access_tokens, create_app
from web.api import chat_jobs
from web.openapi_fixes import BookchatOpenAPI


def _submit(stack: Stack, headers: dict[str, str]) -> None:
    body = {"message": f"What is a node? ({uuid.uuid4().hex[:6]})"}
    response = stack.client.post("/v1/chat/jobs", json=body, headers=headers)
    assert response.status_code == 202, response.get_json()


def test_a_token_is_decoded_once_per_request_and_not_again_by_the_process(
    idle_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = idle_stack.signup()
    decodes: list[str] = []
    real_decode = jwt.decode

    def counting(*args: Any, **kwargs: Any) -> Any:
        decodes.append(str(kwargs.get("options")))
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    _submit(idle_stack, reader)
    assert len(decodes) == 1, decodes  # flask-jwt-extended decoded twice
    _submit(idle_stack, reader)
    assert len(decodes) == 1, decodes  # verified already: its claims are kept


def test_a_kept_token_still_expires(idle_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    reader = idle_stack.signup()
    _submit(idle_stack, reader)  # verified, and kept
    later = time.time() + 86400  # past any access token's lifetime
    monkeypatch.setattr(access_tokens, "_now", lambda: later)

    response = idle_stack.client.get("/v1/me/profile", headers=reader)

    assert_problem(response, 401, "token_expired")


def test_a_revoked_kept_token_is_refused(idle_stack: Stack) -> None:
    reader = idle_stack.signup()
    _submit(idle_stack, reader)  # verified, and kept
    assert idle_stack.client.post("/v1/auth/logout", headers=reader).status_code == 204

    assert_problem(idle_stack.client.get("/v1/me/profile", headers=reader), 401, "invalid_token")


def test_a_submit_reads_no_row_of_its_account(idle_stack: Stack) -> None:
    reader = idle_stack.signup()
    _submit(idle_stack, reader)
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()).lower())

    engine = idle_stack.resources.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        _submit(idle_stack, reader)
    finally:
        event.remove(engine, "before_cursor_execute", record)

    assert [s for s in statements if s.startswith("select") and "from users" in s] == []
    # Nor is the job read back after its commit: the body comes from the values written.
    assert [s for s in statements if s.startswith("select") and "from chat_jobs" in s and
            "where chat_jobs.id" in s] == []  # fmt: skip


@pytest.fixture(params=["sqlite", "postgresql"])
def two_apps(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str
) -> Iterator[tuple[BookchatOpenAPI, BookchatOpenAPI]]:
    """Two apps from the factory over one database and one Redis, as two processes would be."""
    database = f"sqlite:///{tmp_path / 'bookchat.db'}"
    if request.param == "postgresql":
        database = request.getfixturevalue("postgres_url")
    # No worker drains these apps' jobs: make_settings lets admission take them however long
    # other tests' jobs have been queued in the shared PostgreSQL schema.
    settings = make_settings(tmp_path, redis_url, database)
    upgrade_database(settings)
    apps = (create_app(settings), create_app(settings))
    try:
        yield apps
    finally:
        for app in apps:
            app.extensions["bookchat"].close()


def _login(app: BookchatOpenAPI, email: str) -> dict[str, str]:
    body = {"email": email, "password": TEST_PASSWORD}
    response = app.test_client().post("/v1/auth/login", json=body)
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def _new_admin(app: BookchatOpenAPI) -> tuple[str, dict[str, str]]:
    from common.accounts.users import create_user
    from common.platform.db import session_scope
    from common.platform.models import Role

    email = f"admin-{uuid.uuid4().hex[:10]}@example.com"
    with session_scope(app.extensions["bookchat"].sessions) as session:
        user_id = str(create_user(session, email, TEST_PASSWORD, "Admin", Role.ADMIN).id)
    return user_id, _login(app, email)


def test_a_demoted_admin_is_refused_on_the_next_request_in_every_process(
    two_apps: tuple[BookchatOpenAPI, BookchatOpenAPI],
) -> None:
    first, second = two_apps
    boss_id, boss = _new_admin(first)
    demoted_id, demoted = _new_admin(first)
    for app in two_apps:  # both have the demoted admin's facts cached, as admin
        assert app.test_client().get("/v1/admin/queues", headers=demoted).status_code == 200

    response = first.test_client().post(
        f"/v1/admin/users/{demoted_id}/role", json={"role": "user"}, headers=boss
    )
    assert response.status_code == 200, response.get_json()

    for app in (second, first):  # the very next request, with the old token, in either
        refused = app.test_client().get("/v1/admin/queues", headers=demoted)
        assert_problem(refused, 403, "forbidden")
    # And back: a promotion counts at once too.
    first.test_client().post(
        f"/v1/admin/users/{demoted_id}/role", json={"role": "admin"}, headers=boss
    )
    assert second.test_client().get("/v1/admin/queues", headers=demoted).status_code == 200
    assert boss_id != demoted_id


def test_a_deleted_account_is_refused_at_once_in_every_process(
    two_apps: tuple[BookchatOpenAPI, BookchatOpenAPI],
) -> None:
    first, second = two_apps
    email = f"gone-{uuid.uuid4().hex[:10]}@example.com"
    signup = {"email": email, "password": TEST_PASSWORD}
    assert first.test_client().post("/v1/auth/signup", json=signup).status_code == 201
    deleting, other_session = _login(first, email), _login(second, email)
    assert second.test_client().get("/v1/me/profile", headers=other_session).status_code == 200

    assert first.test_client().delete("/v1/me", headers=deleting).status_code == 204

    # Another sign-in's token (its own family, not revoked by the deletion) is refused too.
    refused = second.test_client().get("/v1/me/profile", headers=other_session)
    assert_problem(refused, 401, "invalid_token")
    assert "no longer exists" in refused.get_json()["detail"]


def test_a_submit_reads_its_limit_window_with_the_hit_not_again_for_the_headers(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(
        tmp_path, redis_url, f"sqlite:///{tmp_path / 'bookchat.db'}", rate_limit_submit="50/minute"
    )
    upgrade_database(settings)
    app = create_app(settings)
    sent: list[bytes] = []
    marks: dict[str, int] = {}
    real_send = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        sent.append(command if isinstance(command, bytes) else b"".join(command))
        real_send(self, command, check_health)

    submit = app.view_functions["chat_jobs.submit"]
    first_line = chat_jobs.idempotency_key

    def marked(*args: Any, **kwargs: Any) -> Any:  # outermost: after the auth hooks
        try:
            return submit(*args, **kwargs)
        finally:
            marks["done"] = len(sent)

    def body_starts() -> str | None:  # the view's first line: after auth, limits, validation
        marks["view"] = len(sent)
        return first_line()

    app.view_functions["chat_jobs.submit"] = marked
    monkeypatch.setattr(chat_jobs, "idempotency_key", body_starts)
    try:
        signup = {"email": f"c-{uuid.uuid4().hex[:8]}@example.com", "password": TEST_PASSWORD}
        token = app.test_client().post("/v1/auth/signup", json=signup).get_json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        body = {"message": "What is a node?"}
        app.test_client().post("/v1/chat/jobs", json=body, headers=headers)  # warm the caches
        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
        response = app.test_client().post("/v1/chat/jobs", json=body, headers=headers)
        marks["end"] = len(sent)
    finally:
        app.extensions["bookchat"].close()

    assert response.status_code == 202, response.get_json()
    assert response.headers["X-RateLimit-Limit"] == "50"
    assert response.headers["X-RateLimit-Remaining"] == "48"
    # The token's revocation, its family, the account's facts and the limit's hit: one round
    # trip (the quota reservation needs the validated body: the view makes it).
    assert marks["view"] == 1, sent[: marks["view"]]
    # The headers come from the hit: nothing is read after the view.
    assert marks["end"] == marks["done"], sent[marks["done"] : marks["end"]]


def test_the_limit_follows_the_account_not_the_token_claim(
    two_apps: tuple[BookchatOpenAPI, BookchatOpenAPI],
) -> None:
    first, second = two_apps
    _, boss = _new_admin(first)
    demoted_id, demoted = _new_admin(first)  # its token says "admin": guessed exempt
    body = {"message": "What is a node?"}
    exempt = second.test_client().post("/v1/chat/jobs", json=body, headers=demoted)
    assert exempt.status_code == 202, exempt.get_json()
    assert "X-RateLimit-Limit" not in exempt.headers

    first.test_client().post(
        f"/v1/admin/users/{demoted_id}/role", json={"role": "user"}, headers=boss
    )
    counted = second.test_client().post("/v1/chat/jobs", json=body, headers=demoted)

    assert counted.status_code == 202, counted.get_json()
    assert "X-RateLimit-Limit" in counted.headers  # the users' limit, from the account's role


def test_a_submit_makes_two_redis_round_trips_the_checks_and_the_send_with_its_event(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token's checks before the view, then one script that queues the job and appends its
    `queued` event (the broker and the events share the Redis, as `bookchat` runs them)."""
    settings = make_settings(  # quotas off, as bench.submit_cost runs: no reservation trip
        tmp_path,
        redis_url,
        f"sqlite:///{tmp_path / 'bookchat.db'}",
        user_daily_tokens=0,
        llm_daily_token_budget=0,
    )
    upgrade_database(settings)
    app = create_app(settings)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    sent: list[bytes] = []
    real_send = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        sent.append(command if isinstance(command, bytes) else b"".join(command))
        real_send(self, command, check_health)

    try:
        signup = {"email": f"t-{uuid.uuid4().hex[:8]}@example.com", "password": TEST_PASSWORD}
        token = app.test_client().post("/v1/auth/signup", json=signup).get_json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        warm = app.test_client().post("/v1/chat/jobs", json={"message": "Hi?"}, headers=headers)
        conversation = warm.get_json()["conversation_id"]
        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
        first_turn = {"message": "What is a node?"}  # routed by its repeat hint
        follow_up = {"message": "And a topic?", "conversation_id": conversation}
        jobs = []
        for body in (first_turn, follow_up):
            sent.clear()
            response = app.test_client().post("/v1/chat/jobs", json=body, headers=headers)
            assert response.status_code == 202, response.get_json()
            assert len(sent) == 2, sent  # was 3: the push, then MULTI/XADD/EXPIRE/EXEC
            assert b"EVALSHA" in sent[1] and b"XADD" not in sent[1], sent[1]
            jobs.append(response.get_json()["id"])
        monkeypatch.undo()
        for job_id in jobs:
            events: Any = client.xrange(f"bookchat:job:{job_id}:events")
            assert [fields["data"] for _, fields in events] == ['{"status": "queued"}']
            ttl: Any = client.ttl(f"bookchat:job:{job_id}:events")
            assert ttl > 0
        assert set(jobs) <= waiting_job_ids(app.extensions["bookchat"].celery, CHAT_QUEUE)
    finally:
        client.close()
        app.extensions["bookchat"].close()
