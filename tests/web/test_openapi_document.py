"""The OpenAPI document says what the server does: statuses, rules, the stream, strict types."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.stack import Stack
from tests.web.assertions import assert_problem
from web import rate_limits

JOB_EVENTS = "/v1/chat/jobs/{job_id}/events"


@pytest.fixture(scope="module")
def spec(idle_stack: Stack) -> dict[str, Any]:
    document: dict[str, Any] = idle_stack.client.get("/docs/openapi.json").get_json()
    return document


@pytest.fixture(scope="module")
def admin(idle_stack: Stack) -> dict[str, str]:
    return idle_stack.admin()


def _body_schema(spec: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    content = spec["paths"][path][method]["requestBody"]["content"]["application/json"]
    name = content["schema"]["$ref"].rsplit("/", 1)[-1]
    schema: dict[str, Any] = spec["components"]["schemas"][name]
    return schema


def _string_schema(field: dict[str, Any]) -> dict[str, Any]:
    for branch in field.get("anyOf", [field]):
        if branch.get("type") == "string":
            return branch
    raise AssertionError(field)


def test_a_sibling_route_is_not_captured_by_an_id_route(
    idle_stack: Stack, admin: dict[str, str]
) -> None:
    # GET /v1/admin/jobs/retry used to reach /jobs/{job_id} and fail its id check (422).
    response = idle_stack.client.get("/v1/admin/jobs/retry", headers=admin)

    assert_problem(response, 405, "method_not_allowed")
    assert set(response.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}


@pytest.mark.parametrize(
    "path", ["/v1/auth/signup", "/v1/auth/login", "/v1/auth/guest", "/v1/chat/jobs"]
)
def test_rate_limited_routes_declare_429_with_retry_after(spec: dict[str, Any], path: str) -> None:
    responses = spec["paths"][path]["post"]["responses"]

    assert responses["429"]["headers"]["Retry-After"]["required"] is True
    assert list(responses["429"]["content"]) == ["application/problem+json"]


def test_every_503_problem_declares_retry_after(spec: dict[str, Any]) -> None:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            answer = operation["responses"].get("503")
            if answer and "application/problem+json" in answer["content"]:
                assert "Retry-After" in answer["headers"], (path, method)


def test_free_text_refuses_nul_in_the_document(spec: dict[str, Any]) -> None:
    chat = _body_schema(spec, "/v1/chat/jobs", "post")["properties"]
    signup = _body_schema(spec, "/v1/auth/signup", "post")["properties"]
    fields = [chat["message"], chat["selected_text"], signup["password"], signup["email"]]

    for field in fields:
        pattern = _string_schema(field)["pattern"]
        assert re.search(pattern, "a@b.c"), pattern
        assert re.search(pattern, "a\x00@b.c") is None, pattern


def test_repeats_and_exactly_one_of_two_are_in_the_document(spec: dict[str, Any]) -> None:
    profile = _body_schema(spec, "/v1/me/profile", "put")["properties"]
    chapter = _body_schema(spec, "/v1/chapters/translate", "post")

    assert profile["programming_languages"]["uniqueItems"] is True
    assert profile["hardware"]["uniqueItems"] is True
    assert {"maxItems": 1} in profile["hardware"]["anyOf"]
    assert [branch["required"] for branch in chapter["oneOf"]] == [["source"], ["page_url"]]


def test_the_event_stream_documents_each_event(spec: dict[str, Any]) -> None:
    media = spec["paths"][JOB_EVENTS]["get"]["responses"]["200"]["content"]
    events = media["text/event-stream"]["x-events"]

    assert list(media) == ["text/event-stream"]
    assert {"status", "delta", "reset", "citations", "done", "error"} <= set(events)
    for event in events.values():
        name = event["data"]["$ref"].rsplit("/", 1)[-1]
        assert spec["components"]["schemas"][name]["type"] == "object"


def test_the_event_stream_schema_describes_one_parsed_event(spec: dict[str, Any]) -> None:
    # Schemathesis validates each event ({event, data, id}) against this schema (ST108).
    media = spec["paths"][JOB_EVENTS]["get"]["responses"]["200"]["content"]["text/event-stream"]
    schema = media["schema"]

    assert schema["type"] == "object"
    assert schema["required"] == ["event", "data"]
    assert set(schema["properties"]["event"]["enum"]) == set(media["x-events"])
    assert schema["properties"]["data"]["type"] == "string"
    assert schema["properties"]["id"]["type"] == "string"


def test_null_filters_the_server_accepts_are_declared(spec: dict[str, Any]) -> None:
    # `{"since": null}` is a bulk retry without that filter (202): the schema must allow it.
    properties = spec["components"]["schemas"]["BulkRetryRequest"]["properties"]

    for name in ("status", "kind", "user", "error_code", "since"):
        assert {"type": "null"} in properties[name]["anyOf"], name


def test_links_name_real_operations(spec: dict[str, Any]) -> None:
    operation_ids = {op["operationId"] for item in spec["paths"].values() for op in item.values()}
    links = spec["paths"]["/v1/chat/jobs"]["post"]["responses"]["202"]["links"]

    assert {"ReadJob", "CancelJob", "ReadConversation"} <= set(links)
    assert {link["operationId"] for link in links.values()} <= operation_ids


@pytest.mark.parametrize("body", [{"full": 0}, {"full": "true"}, {"allow_empty": 1}])
def test_body_booleans_are_strict(
    idle_stack: Stack, admin: dict[str, str], body: dict[str, Any]
) -> None:
    response = idle_stack.client.post(
        "/v1/admin/ingest", json={"path": "/srv/book", **body}, headers=admin
    )

    assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize(
    ("value", "status"), [("0", 422), ("1", 422), ("True", 422), ("true", 200), ("false", 200)]
)
def test_query_booleans_take_true_or_false_only(
    idle_stack: Stack, admin: dict[str, str], value: str, status: int
) -> None:
    response = idle_stack.client.get(f"/v1/admin/jobs?dead={value}", headers=admin)

    assert response.status_code == status, response.get_json()


def test_every_limited_endpoint_declares_429(idle_stack: Stack, spec: dict[str, Any]) -> None:
    # Read from the limiter itself: a limit added to the table declares its 429 on its own.
    limited = {endpoint for row in rate_limits.LIMITS for endpoint in row.endpoints}
    rules = [rule for rule in idle_stack.app.url_map.iter_rules() if rule.endpoint in limited]

    assert {rule.endpoint for rule in rules} == limited
    for rule in rules:
        if not rule.rule.startswith("/v1/"):
            continue  # the admin page's HTML login form is no API operation
        path = re.sub(r"<([^<:]+:)?", "{", rule.rule).replace(">", "}")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            assert "429" in spec["paths"][path][method.lower()]["responses"], (path, method)


def test_a_source_the_document_accepts_is_one_the_server_accepts_after_stripping(
    spec: dict[str, Any],
) -> None:
    # Found by the stateful fuzz: "\n/a.md" matched the pattern, then stripped to "/a.md" (422).
    body = _body_schema(spec, "/v1/chapters/personalize", "post")
    schema = _string_schema(body["properties"]["source"])
    pattern = re.compile(schema["pattern"])

    assert pattern.match("01-ros2/nodes-and-topics.md")
    for source in ("\n/a.md", " a.md", "\u3000a.md", "/a.md", ".a.md", "a//b.md"):
        assert not pattern.match(source), source
