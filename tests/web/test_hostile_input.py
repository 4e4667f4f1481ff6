"""No 500s from input: hostile bodies, URLs, headers and methods get a 4xx problem+json."""

from __future__ import annotations

import logging
import runpy
import uuid

import pytest
from werkzeug.test import TestResponse

from tests.support.stack import REPO_ROOT, Stack
from tests.web.assertions import assert_problem
from web import input_limits

LOGIN = "/v1/auth/login"
JOBS = "/v1/chat/jobs"
DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.fixture(scope="module")
def headers(idle_stack: Stack) -> dict[str, str]:
    """One reader's Authorization header for the module."""
    return idle_stack.signup("hostile")


def _post(
    stack: Stack, path: str, data: bytes, headers: dict[str, str] | None = None
) -> TestResponse:
    return stack.client.post(path, data=data, content_type="application/json", headers=headers)


@pytest.mark.parametrize("path", [LOGIN, JOBS])
def test_deeply_nested_json_is_400_without_a_traceback(
    idle_stack: Stack,
    headers: dict[str, str],
    path: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO):
        response = idle_stack.client.post(
            path, data=DEEP, content_type="application/json", headers=headers
        )

    body = assert_problem(response, 400, "malformed_json")
    assert "nests deeper" in body["detail"]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def test_nesting_within_the_limit_reaches_validation(idle_stack: Stack) -> None:
    inner = input_limits.MAX_JSON_DEPTH - 1  # the object around it is one level
    nested = "[" * inner + "]" * inner
    body = f'{{"email": "a@example.com", "password": {nested}}}'.encode()

    response = idle_stack.client.post(LOGIN, data=body, content_type="application/json")

    assert_problem(response, 422, "validation_error")


def test_brackets_inside_strings_do_not_count(idle_stack: Stack) -> None:
    body = b'{"email": "a@example.com", "password": "' + b"[{" * 40 + b'"}'

    response = idle_stack.client.post(LOGIN, data=body, content_type="application/json")

    assert_problem(response, 401, "invalid_credentials")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{}", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'["]]]]", [["[[["]]]', 3),
        (b'"\\"[[[["', 0),
        (b"[" * 40 + b'"unterminated', 40),
        (b"[" * 50 + b"]" * 50, 50),
    ],
)
def test_json_depth(raw: bytes, expected: int) -> None:
    assert input_limits.json_depth(raw) == expected


@pytest.mark.parametrize(
    "data",
    [
        b'{"email": "a@example.com", "password": "\xff\xfe"}',  # invalid UTF-8
        b'{"email": "a@example.com", "password": 1' + b"0" * 5000 + b"}",  # past int limits
        b'{"email": "a@example.com",',  # truncated
        b'{"email": "a@example.com", "password": "a\x00b"}',  # raw NUL: a control character
    ],
    ids=["invalid-utf8", "huge-integer", "truncated", "raw-nul"],
)
def test_undecodable_bodies_are_malformed_json(idle_stack: Stack, data: bytes) -> None:
    assert_problem(_post(idle_stack, LOGIN, data), 400, "malformed_json")


@pytest.mark.parametrize(
    "data",
    [
        b'{"email": "a@example.com", "password": "pw\\u0000pw"}',
        b'{"email": "a@example.com", "pass\\u0000word": "pw"}',
        b'{"email": "a@example.com", "password": "\\ud800"}',
    ],
    ids=["escaped-nul", "nul-in-key", "lone-surrogate"],
)
def test_nul_and_lone_surrogates_are_invalid_input(idle_stack: Stack, data: bytes) -> None:
    body = assert_problem(_post(idle_stack, LOGIN, data), 400, "invalid_input")
    assert "JSON body" in body["detail"]


def test_escaped_backslash_before_u0000_is_plain_text(idle_stack: Stack) -> None:
    data = b'{"email": "a@example.com", "password": "pw\\\\u0000pw"}'

    assert_problem(_post(idle_stack, LOGIN, data), 401, "invalid_credentials")


def test_nul_in_chat_message_is_refused(idle_stack: Stack, headers: dict[str, str]) -> None:
    data = b'{"message": "hello\\u0000world"}'

    assert_problem(_post(idle_stack, JOBS, data, headers), 400, "invalid_input")


def test_huge_float_is_a_validation_error(idle_stack: Stack, headers: dict[str, str]) -> None:
    response = idle_stack.client.get(f"{JOBS}/{uuid.uuid4()}?wait=1e999", headers=headers)

    assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize(
    ("content_type", "status", "code"),
    [
        ("text/plain", 415, "unsupported_media_type"),
        ("application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        ("multipart/form-data; boundary=x", 415, "unsupported_media_type"),
        ("application/json; charset=latin-1", 415, "unsupported_media_type"),  # UTF-8 only
    ],
)
def test_wrong_content_types(idle_stack: Stack, content_type: str, status: int, code: str) -> None:
    data = '{"email": "a@example.com", "password": "pw\xe9"}'.encode("latin-1")

    response = idle_stack.client.post(LOGIN, data=data, content_type=content_type)

    assert_problem(response, status, code)


def test_nul_in_query_string_is_invalid_input(idle_stack: Stack, headers: dict[str, str]) -> None:
    response = idle_stack.client.get("/v1/conversations?limit=5%00", headers=headers)

    assert_problem(response, 400, "invalid_input")


def test_ten_kilobyte_url_is_414(idle_stack: Stack, headers: dict[str, str]) -> None:
    response = idle_stack.client.get(f"/v1/conversations?pad={'x' * 10_240}", headers=headers)

    assert_problem(response, 414, "request_uri_too_long")


def test_too_many_headers_is_431(idle_stack: Stack) -> None:
    many = {f"X-Filler-{n}": "x" for n in range(input_limits.MAX_HEADER_FIELDS + 1)}

    assert_problem(idle_stack.client.get("/v1/me", headers=many), 431)


def test_huge_header_is_431(idle_stack: Stack) -> None:
    response = idle_stack.client.get("/v1/me", headers={"X-Filler": "x" * 10_000})

    assert_problem(response, 431, "request_header_fields_too_large")


def test_huge_bearer_token_is_431_not_500(idle_stack: Stack) -> None:
    response = idle_stack.client.get("/v1/me", headers={"Authorization": "Bearer " + "a" * 9000})

    assert_problem(response, 431)


def _routes(stack: Stack) -> list[str]:
    ids = ("job_id", "user_id", "conversation_id", "run_id")
    sample = {name: uuid.uuid4() for name in ids}
    paths = []
    for rule in stack.app.url_map.iter_rules():
        values = {arg: sample.get(arg, "x.js") for arg in rule.arguments}
        paths.append(
            rule.rule
            if not values
            else str(stack.app.url_map.bind("").build(rule.endpoint, values))
        )
    return sorted(set(paths))


def test_options_on_every_route_is_204_with_allow(idle_stack: Stack) -> None:
    for path in _routes(idle_stack):
        response = idle_stack.client.options(path)

        assert response.status_code == 204, (path, response.get_data(as_text=True))
        assert "OPTIONS" in response.headers["Allow"], path
        assert response.get_data() == b""


def test_options_on_admin_routes_needs_no_token(idle_stack: Stack) -> None:
    response = idle_stack.client.options(f"/v1/admin/jobs/{uuid.uuid4()}/retry")

    assert response.status_code == 204
    assert set(response.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}


def test_unknown_method_is_405_problem(idle_stack: Stack) -> None:
    response = idle_stack.client.open("/v1/admin/queues", method="PATCH")

    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_options_on_unknown_path_is_404_problem(idle_stack: Stack) -> None:
    assert_problem(idle_stack.client.options("/v1/nowhere"), 404)


def test_gunicorn_limits_match_the_app() -> None:
    conf = runpy.run_path(str(REPO_ROOT / "web" / "gunicorn_conf.py"))

    assert conf["limit_request_line"] == input_limits.MAX_REQUEST_LINE_BYTES
    assert conf["limit_request_fields"] == input_limits.MAX_HEADER_FIELDS
    assert conf["limit_request_field_size"] == input_limits.MAX_HEADER_FIELD_BYTES


def test_openapi_errors_are_problem_json(idle_stack: Stack) -> None:
    spec = idle_stack.client.get("/docs/openapi.json").get_json()

    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) < 400 or (path, status) == ("/readyz", "503"):
                    continue
                assert list(response["content"]) == ["application/problem+json"], (
                    path,
                    method,
                    status,
                )
                schema = response["content"]["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}
    assert "ValidationErrorModel" not in spec["components"]["schemas"]


def test_openapi_documents_the_plain_endpoints(idle_stack: Stack) -> None:
    paths = idle_stack.client.get("/docs/openapi.json").get_json()["paths"]

    assert list(paths["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    assert "application/json" in paths["/healthz"]["get"]["responses"]["200"]["content"]
    assert "application/json" in paths["/readyz"]["get"]["responses"]["503"]["content"]
    events = paths["/v1/chat/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"]
    assert list(events) == ["text/event-stream"]
    assert "422" not in paths["/healthz"]["get"]["responses"]
