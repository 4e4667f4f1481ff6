"""CORS: only the listed origins get headers, preflights included, and never credentials."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient
from pydantic import ValidationError
from werkzeug.test import TestResponse

from tests.support.stack import make_settings
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
