"""CORS: only the listed origins get headers, preflights included, and never credentials."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import ValidationError
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from common.platform.models import Role, User
from tests.support.stack import Stack, make_settings
from tests.web.assertions import assert_problem
from web import create_app

BOOK = "https://book.example.com"
OTHER = "https://evil.example.net"
# Every route the widget calls, with the method its preflight asks for.
WIDGET_ROUTES = [
    ("/v1/auth/guest", "POST"),
    ("/v1/chat/jobs", "POST"),
    ("/v1/chat/jobs/3f0c1b9e-1111-4a4a-9a9a-0123456789ab", "GET"),
    ("/v1/chat/jobs/3f0c1b9e-1111-4a4a-9a9a-0123456789ab/events", "GET"),
    ("/v1/chat/jobs/3f0c1b9e-1111-4a4a-9a9a-0123456789ab/cancel", "POST"),
    ("/v1/chapters/personalize", "POST"),
    ("/v1/chapters/translate", "POST"),
]


def _client(tmp_path: Path, redis_url: str, origins: list[str]) -> FlaskClient:
    settings = make_settings(tmp_path / "var", redis_url, cors_origins=origins)
    return create_app(settings).test_client()


@pytest.fixture
def client(tmp_path: Path, redis_url: str) -> FlaskClient:
    """The app with one allowed origin."""
    return _client(tmp_path, redis_url, [BOOK])


def _preflight(client: FlaskClient, path: str, method: str, origin: str) -> TestResponse:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )


@pytest.mark.parametrize(("path", "method"), WIDGET_ROUTES)
def test_preflight_from_the_book_is_allowed(client: FlaskClient, path: str, method: str) -> None:
    response = _preflight(client, path, method, BOOK)

    assert response.status_code == 204
    headers = response.headers
    assert headers["Access-Control-Allow-Origin"] == BOOK
    assert method in headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key"} <= allowed
    assert "Access-Control-Allow-Credentials" not in headers
    assert "Origin" in headers["Vary"]


@pytest.mark.parametrize(("path", "method"), WIDGET_ROUTES)
def test_preflight_from_another_origin_gets_no_cors_headers(
    client: FlaskClient, path: str, method: str
) -> None:
    response = _preflight(client, path, method, OTHER)

    assert response.status_code == 204
    assert not [h for h in response.headers if h[0].startswith("Access-Control-")]


def test_resume_header_is_allowed_for_the_event_stream(client: FlaskClient) -> None:
    path = WIDGET_ROUTES[3][0]
    response = client.options(
        path,
        headers={
            "Origin": BOOK,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, last-event-id",
        },
    )

    assert "last-event-id" in response.headers["Access-Control-Allow-Headers"].lower()


def test_problem_answers_carry_cors_and_expose_the_request_id(client: FlaskClient) -> None:
    response = client.post("/v1/chat/jobs", json={"message": "hi"}, headers={"Origin": BOOK})

    assert_problem(response, 401, "unauthorized")
    assert response.headers["Access-Control-Allow-Origin"] == BOOK
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"Location", "Retry-After", "X-Request-ID"} <= exposed
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_simple_request_from_another_origin_gets_no_cors_headers(client: FlaskClient) -> None:
    response = client.get("/healthz", headers={"Origin": OTHER})

    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


def test_no_origins_configured_means_no_cors_at_all(tmp_path: Path, redis_url: str) -> None:
    client = _client(tmp_path, redis_url, [])

    response = _preflight(client, "/v1/chat/jobs", "POST", BOOK)

    assert response.status_code == 204
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize(
    "origin",
    ["*", "https://*.example.com", "https://book.example.com/", "book.example.com", "null"],
)
def test_settings_refuse_wildcards_and_non_origins(
    tmp_path: Path, redis_url: str, origin: str
) -> None:
    with pytest.raises(ValidationError, match="CORS_ORIGINS"):
        make_settings(tmp_path, redis_url, cors_origins=[BOOK, origin])


@pytest.fixture(scope="module")
def guarded(idle_stack: Stack) -> Iterator[Flask]:
    """The app on the idle stack's database, allowing BOOK, with one guest token per address."""
    update = {"cors_origins": [BOOK], "rate_limit_guest": "1/hour"}
    app = create_app(idle_stack.settings.model_copy(update=update))
    yield app
    app.extensions["bookchat"].close()


def _guests(stack: Stack) -> int:
    with stack.resources.sessions() as session:
        return int(session.scalar(select(func.count()).where(User.role == Role.GUEST.value)) or 0)


def _post_guest(app: Flask, address: str, origin: str | None) -> TestResponse:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    headers = {"Origin": origin} if origin else {}
    return client.post("/v1/auth/guest", headers=headers)


REFUSED = [OTHER, "null", "http://localhost.evil.example", BOOK + ".evil", BOOK + ":8443"]


@pytest.mark.parametrize("origin", REFUSED)
def test_a_site_that_is_not_allowed_gets_no_guest_and_spends_no_limit(
    guarded: Flask, idle_stack: Stack, origin: str
) -> None:
    before, address = _guests(idle_stack), f"10.17.1.{REFUSED.index(origin)}"

    refused = [_post_guest(guarded, address, origin) for _ in range(3)]

    for response in refused:
        body = assert_problem(response, 403, "origin_not_allowed")
        assert body["origin"] == origin and body["setting"] == "CORS_ORIGINS"
        assert "CORS_ORIGINS" in body["detail"]
        assert "Access-Control-Allow-Origin" not in response.headers
    assert _guests(idle_stack) == before
    # The address's one guest token of the hour is still there for its own readers.
    assert _post_guest(guarded, address, BOOK).status_code == 201
    assert _guests(idle_stack) == before + 1


def test_the_listed_site_the_apis_own_pages_and_non_browsers_get_guests(guarded: Flask) -> None:
    listed = _post_guest(guarded, "10.17.0.2", BOOK)
    own = _post_guest(guarded, "10.17.0.3", "http://localhost")  # the test client's host
    curl = _post_guest(guarded, "10.17.0.4", None)

    assert listed.status_code == 201, listed.get_json()
    assert listed.headers["Access-Control-Allow-Origin"] == BOOK
    assert own.status_code == 201, own.get_json()
    assert curl.status_code == 201, curl.get_json()


def test_without_cors_origins_only_the_apis_own_pages_get_guests(idle_stack: Stack) -> None:
    app = create_app(idle_stack.settings.model_copy(update={"cors_origins": []}))
    try:
        assert_problem(_post_guest(app, "10.17.0.5", BOOK), 403, "origin_not_allowed")
        assert _post_guest(app, "10.17.0.5", "http://localhost").status_code == 201
    finally:
        app.extensions["bookchat"].close()


def test_a_refused_sites_preflight_is_still_answered(guarded: Flask) -> None:
    response = _preflight(guarded.test_client(), "/v1/auth/guest", "POST", OTHER)

    assert response.status_code == 204
    assert "Access-Control-Allow-Origin" not in response.headers
