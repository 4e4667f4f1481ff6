"""Every error is problem+json: request ids, body checks, path and query validation, routing."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from common.platform.api_types import MAX_MESSAGE_CHARS, MAX_PAGE_URL_CHARS, MAX_SELECTED_TEXT_CHARS
from tests.support.stack import Stack
from tests.web.assertions import assert_problem
from web import MAX_BODY_BYTES

JOBS = "/v1/chat/jobs"


@pytest.fixture(scope="module")
def headers(idle_stack: Stack) -> dict[str, str]:
    """One reader's Authorization header for the module."""
    return idle_stack.signup("problems")


def test_problem_has_the_rfc_9457_members(idle_stack: Stack, headers: dict[str, str]) -> None:
    missing = uuid.uuid4()

    response = idle_stack.client.get(f"{JOBS}/{missing}", headers=headers)

    body = assert_problem(response, 404, "not_found")
    assert body["title"] == "Not found"
    assert str(missing) in body["detail"]
    assert body["instance"] == f"{JOBS}/{missing}"


def test_sane_request_id_is_echoed(idle_stack: Stack) -> None:
    supplied = f"req-{uuid.uuid4().hex}"

    response = idle_stack.client.get("/v1/me", headers={"X-Request-ID": supplied})

    assert response.headers["X-Request-ID"] == supplied
    assert assert_problem(response, 401)["request_id"] == supplied


def test_request_id_is_echoed_on_success_too(idle_stack: Stack) -> None:
    supplied = "trace.0123456789"

    response = idle_stack.client.get("/healthz", headers={"X-Request-ID": supplied})

    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == supplied


@pytest.mark.parametrize(
    "supplied", [None, "short", "has spaces in it", "bad\\chars!!", "x" * 129], ids=repr
)
def test_request_id_is_generated_when_missing_or_insane(
    idle_stack: Stack, supplied: str | None
) -> None:
    headers = {"X-Request-ID": supplied} if supplied is not None else {}

    response = idle_stack.client.get("/v1/me", headers=headers)

    generated = response.headers["X-Request-ID"]
    assert generated != supplied
    assert len(generated) == 32 and int(generated, 16) >= 0
    assert assert_problem(response, 401)["request_id"] == generated


def test_malformed_json_is_400(idle_stack: Stack, headers: dict[str, str]) -> None:
    response = idle_stack.client.post(
        JOBS, data='{"message": "hi",', content_type="application/json", headers=headers
    )

    body = assert_problem(response, 400, "malformed_json")
    assert body["detail"].startswith("request body is not valid JSON")


def test_non_json_body_is_415(idle_stack: Stack, headers: dict[str, str]) -> None:
    response = idle_stack.client.post(
        JOBS, data="message=hi", content_type="application/x-www-form-urlencoded", headers=headers
    )

    assert_problem(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"message": 123}, ["message"]),
        ({"message": ""}, ["message"]),
        ({"message": " \t\n "}, ["message"]),
        ({"message": "x" * (MAX_MESSAGE_CHARS + 1)}, ["message"]),
        ({"message": "hi", "temperature": 2}, ["temperature"]),
        ({"message": "hi", "conversation_id": "not-a-uuid"}, ["conversation_id"]),
        ({}, ["message"]),
        ([], []),
    ],
    ids=[
        "wrong-type",
        "empty",
        "whitespace",
        "too-long",
        "unknown-field",
        "bad-conversation-id",
        "missing",
        "not-an-object",
    ],
)
def test_invalid_chat_job_is_422(
    idle_stack: Stack, headers: dict[str, str], body: Any, loc: list[str]
) -> None:
    response = idle_stack.client.post(JOBS, json=body, headers=headers)

    problem = assert_problem(response, 422, "validation_error")
    assert problem["errors"], problem
    assert problem["errors"][0]["loc"] == loc


def test_message_of_exactly_the_limit_is_accepted(
    idle_stack: Stack, headers: dict[str, str]
) -> None:
    response = idle_stack.client.post(
        JOBS, json={"message": "x" * MAX_MESSAGE_CHARS}, headers=headers
    )

    assert response.status_code == 202, response.get_json()
    assert len(response.get_json()["message"]) == MAX_MESSAGE_CHARS


@pytest.mark.parametrize("char", ["x", "\u00e9", "\U0001f600"], ids=["ascii", "latin", "emoji"])
@pytest.mark.parametrize("ensure_ascii", [True, False], ids=["escaped", "utf8"])
def test_largest_valid_chat_job_fits_the_body_limit(
    idle_stack: Stack, headers: dict[str, str], char: str, ensure_ascii: bool
) -> None:
    """Python clients escape non-ASCII as \\uXXXX by default: up to 12 bytes a character."""
    body = {
        "message": char * MAX_MESSAGE_CHARS,
        "selected_text": char * MAX_SELECTED_TEXT_CHARS,
        "page_url": "https://book.example/" + char * (MAX_PAGE_URL_CHARS - 21),
    }
    data = json.dumps(body, ensure_ascii=ensure_ascii).encode()

    response = idle_stack.client.post(
        JOBS, data=data, content_type="application/json", headers=headers
    )

    assert response.status_code == 202, response.get_json()
    assert response.get_json()["message"] == body["message"]


def test_body_over_the_limit_is_413(idle_stack: Stack, headers: dict[str, str]) -> None:
    body = '{"message": "' + "x" * MAX_BODY_BYTES + '"}'

    response = idle_stack.client.post(
        JOBS, data=body, content_type="application/json", headers=headers
    )

    assert_problem(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    "path",
    [f"{JOBS}/not-a-uuid", f"{JOBS}/not-a-uuid/events", "/v1/conversations/12345"],
)
def test_bad_uuid_in_path_is_404(idle_stack: Stack, headers: dict[str, str], path: str) -> None:
    # Ids are typed in the URL map (`<uuid:...>`): a value that is not one names no route.
    response = idle_stack.client.get(path, headers=headers)

    assert_problem(response, 404, "not_found")


def test_bad_uuid_in_cancel_path_is_404(idle_stack: Stack, headers: dict[str, str]) -> None:
    response = idle_stack.client.post(f"{JOBS}/not-a-uuid/cancel", headers=headers)

    assert_problem(response, 404, "not_found")


@pytest.mark.parametrize(
    "path", [f"{JOBS}/{{id}}", f"{JOBS}/{{id}}/events", "/v1/conversations/{id}"]
)
def test_unknown_uuid_is_404(idle_stack: Stack, headers: dict[str, str], path: str) -> None:
    response = idle_stack.client.get(path.format(id=uuid.uuid4()), headers=headers)

    assert_problem(response, 404, "not_found")


def test_unknown_route_is_a_404_problem(idle_stack: Stack) -> None:
    response = idle_stack.client.get("/v1/no-such-thing")

    body = assert_problem(response, 404, "not_found")
    assert body["instance"] == "/v1/no-such-thing"


def test_wrong_method_is_405_with_allow(idle_stack: Stack, headers: dict[str, str]) -> None:
    response = idle_stack.client.delete(JOBS, headers=headers)

    assert_problem(response, 405, "method_not_allowed")
    allowed = {method.strip() for method in response.headers["Allow"].split(",")}
    assert "POST" in allowed
    assert "DELETE" not in allowed


def test_get_on_a_post_only_route_is_405(idle_stack: Stack) -> None:
    response = idle_stack.client.get("/v1/auth/login")

    assert_problem(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize("wait", ["31", "abc", "-1"])
def test_bad_wait_is_422(idle_stack: Stack, headers: dict[str, str], wait: str) -> None:
    job_id = idle_stack.submit(headers, message="Is wait validated?")["id"]

    response = idle_stack.client.get(f"{JOBS}/{job_id}?wait={wait}", headers=headers)

    problem = assert_problem(response, 422, "validation_error")
    assert problem["errors"][0]["loc"] == ["wait"]


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "after=nope"])
def test_bad_list_query_is_422(idle_stack: Stack, headers: dict[str, str], query: str) -> None:
    response = idle_stack.client.get(f"/v1/conversations?{query}", headers=headers)

    assert_problem(response, 422, "validation_error")
