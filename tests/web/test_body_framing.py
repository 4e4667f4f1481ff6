"""Broken request framing on a real gunicorn: a chunked body it cannot read is a 400 problem."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from bench.streams import WebProcess
from tests.support.web_process import migrated_settings, serving

HEAD = (
    b"POST /v1/auth/login HTTP/1.1\r\nHost: bookchat\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
)


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, redis_base_url: str) -> Iterator[WebProcess]:
    """gunicorn as `bookchat web` runs it, with a database of its own."""
    with serving(migrated_settings(tmp_path_factory.mktemp("framing"), redis_base_url)) as running:
        yield running


def _exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(raw)
        conn.shutdown(socket.SHUT_WR)  # a body cut short ends here
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"ZZ\r\n{}\r\n0\r\n\r\n", "invalid_input"),  # a chunk size that is not hexadecimal
        (b"2\r\n{}XX0\r\n\r\n", "invalid_input"),  # a chunk without its CRLF
        (b"10\r\n{}", "bad_request"),  # the connection ends inside a chunk (werkzeug's 400)
    ],
    ids=["bad-size", "missing-terminator", "cut-short"],
)
def test_unreadable_chunked_body_is_400_problem(web: WebProcess, body: bytes, code: str) -> None:
    status, headers, payload = _exchange(web.port, HEAD + body)

    assert status == 400, payload
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(payload)
    assert problem["code"] == code, problem
    assert problem["request_id"] == headers["x-request-id"]
