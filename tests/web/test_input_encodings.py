"""JSON is UTF-8 only: NUL cannot reach the database through UTF-16 or UTF-32 bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from common.platform.models import ChatJob
from tests.support.stack import NewStack, Stack
from tests.web.assertions import assert_problem

JOBS = "/v1/chat/jobs"
# Each encoding with and without its byte order mark; json.loads(bytes) reads them all.
ENCODINGS = ["utf-16-le", "utf-16-be", "utf-16", "utf-32-le", "utf-32-be", "utf-32"]


@pytest.fixture(scope="module")
def db_stack(new_stack: NewStack, database_url: str) -> Iterator[Stack]:
    """The API alone, on SQLite and on PostgreSQL."""
    with new_stack("encodings", database_url=database_url, with_worker=False) as running:
        yield running


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_nul_in_a_utf16_or_utf32_body_is_refused_and_never_stored(
    db_stack: Stack, encoding: str
) -> None:
    headers = db_stack.signup("encodings")
    message = f"hidden NUL {encoding}"
    body = json.dumps({"message": message.replace("NUL", "\u0000")}).encode(encoding)
    assert b"\\u" not in body  # the escape is spelled in wide characters

    response = db_stack.client.post(
        JOBS, data=body, content_type="application/json", headers=headers
    )

    assert_problem(response, 415, "unsupported_media_type")
    with db_stack.resources.sessions() as session:
        stored = select(func.count()).where(ChatJob.message.like("hidden%"))
        assert session.scalar(stored) == 0


def test_a_body_declared_in_another_charset_is_415(db_stack: Stack) -> None:
    headers = db_stack.signup("charset")
    response = db_stack.client.post(
        JOBS,
        data=b'{"message": "What is a node?"}',
        content_type="application/json; charset=utf-16",
        headers=headers,
    )

    assert_problem(response, 415, "unsupported_media_type")


def test_utf8_with_or_without_a_bom_is_accepted_and_escaped_nul_is_400(db_stack: Stack) -> None:
    headers = db_stack.signup("utf8")
    for prefix in (b"", b"\xef\xbb\xbf"):
        body = prefix + json.dumps({"message": "Ein Knoten? ünïcode"}).encode()
        response = db_stack.client.post(
            JOBS, data=body, content_type="application/json", headers=headers
        )
        assert response.status_code == 202, response.get_json()
    escaped = json.dumps({"message": "a\u0000b"}).encode()
    response = db_stack.client.post(
        JOBS, data=escaped, content_type="application/json", headers=headers
    )
    assert_problem(response, 400, "invalid_input")


def test_encoded_surrogates_and_nul_in_headers_are_400(db_stack: Stack) -> None:
    headers = db_stack.signup("surrogates")
    # A lone surrogate written as UTF-8 bytes: json.loads(bytes) would pass it through.
    body = b'{"message": "half \xed\xa0\x80 a pair"}'
    response = db_stack.client.post(
        JOBS, data=body, content_type="application/json", headers=headers
    )
    assert_problem(response, 400, "malformed_json")
    nul_key = {**headers, "Idempotency-Key": "key\x00one"}
    response = db_stack.client.post(JOBS, json={"message": "What is a node?"}, headers=nul_key)
    assert_problem(response, 400, "invalid_input")
