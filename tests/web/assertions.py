"""Assertions shared by the web tests."""

from __future__ import annotations

from typing import Any

from werkzeug.test import TestResponse

PROBLEM_KEYS = {"type", "title", "status", "detail", "request_id", "code"}


def assert_problem(response: TestResponse, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status (and code); return its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json(force=True)
    assert body.keys() >= PROBLEM_KEYS, body
    assert body["status"] == status
    assert body["type"] == f"/problems/{body['code']}"
    assert body["request_id"] == response.headers["X-Request-ID"]
    if code is not None:
        assert body["code"] == code, body
    return body


def assert_unavailable(response: TestResponse, code: str) -> dict[str, Any]:
    """A 503 problem with this code that says when to retry."""
    body = assert_problem(response, 503, code)
    assert int(response.headers["Retry-After"]) >= 1, response.headers
    return body
