"""Structured logs: JSON lines with the request id, in the web app and in the worker it enqueued."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.platform.logging_setup import (
    configure_logging,
    log_format,
    make_formatter,
    request_id_bound,
)
from tests.support.stack import Stack, make_settings


@pytest.fixture
def root_stream() -> Iterator[io.StringIO]:
    """What bookchat's root handler writes during the test."""
    handlers = [h for h in logging.getLogger().handlers if type(h).__name__ == "_OurHandler"]
    assert handlers, "create_app installs the JSON handler"
    stream = io.StringIO()
    old = [h.setStream(stream) for h in handlers]  # type: ignore[attr-defined]
    yield stream
    for handler, previous in zip(handlers, old, strict=True):
        handler.setStream(previous)  # type: ignore[attr-defined]


def json_lines(text: str) -> list[dict]:
    """Every line parsed as JSON (fails on a line that is not)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_a_request_logs_json_lines_with_its_request_id(
    stack: Stack, root_stream: io.StringIO
) -> None:
    rid = "test-request-0001"
    response = stack.client.get("/healthz", headers={"X-Request-ID": rid})
    assert response.headers["X-Request-ID"] == rid

    lines = json_lines(root_stream.getvalue())

    access = [line for line in lines if line["logger"] == "bookchat.access"]
    assert access, lines
    line = access[-1]
    assert {"time", "level", "logger", "message", "request_id"} <= set(line)
    assert line["request_id"] == rid and line["level"] == "INFO"
    assert line["route"] == "/healthz" and line["status"] == "200"


def test_a_generated_request_id_is_logged_and_echoed(
    stack: Stack, root_stream: io.StringIO
) -> None:
    response = stack.client.get("/healthz", headers={"X-Request-ID": "bad id!"})
    rid = response.headers["X-Request-ID"]
    assert rid != "bad id!"
    assert json_lines(root_stream.getvalue())[-1]["request_id"] == rid


def test_the_worker_logs_the_request_id_of_the_submit(stack: Stack) -> None:
    rid = f"submit-{time.time_ns()}"
    headers = {**stack.signup(), "X-Request-ID": rid}
    response = stack.client.post(
        "/v1/chat/jobs", json={"message": "What is a topic?"}, headers=headers
    )
    assert response.status_code == 202
    job = stack.wait(headers, response.get_json()["id"])
    assert job["status"] == "completed"

    assert stack.log_path is not None
    deadline = time.monotonic() + 10
    while True:
        tagged = [line for line in _worker_json(stack.log_path) if line.get("request_id") == rid]
        if tagged or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert tagged, stack.worker_log()
    assert all({"time", "level", "logger", "message"} <= set(line) for line in tagged)


def _worker_json(path: Path) -> list[dict]:
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def test_text_logs_by_default_in_development_and_json_elsewhere(tmp_path: Path) -> None:
    base = make_settings(tmp_path, "redis://127.0.0.1:1/0")
    assert log_format(base) == "json"
    assert log_format(base.model_copy(update={"environment": "development"})) == "text"
    assert log_format(base.model_copy(update={"log_format": "text"})) == "text"


def test_the_text_format_shows_the_request_id() -> None:
    record = logging.LogRecord("bookchat.test", logging.INFO, __file__, 1, "hello", None, None)
    record.request_id = "abc12345"
    assert "[abc12345] hello" in make_formatter("text").format(record)


def test_request_id_bound_tags_records(tmp_path: Path) -> None:
    configure_logging(make_settings(tmp_path, "redis://127.0.0.1:1/0"))
    stream = io.StringIO()
    handler = next(h for h in logging.getLogger().handlers if type(h).__name__ == "_OurHandler")
    previous = handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        with request_id_bound("bound-id-1"):
            logging.getLogger("bookchat.test").warning("inside")
        logging.getLogger("bookchat.test").warning("outside")
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]
    inside, outside = json_lines(stream.getvalue())[-2:]
    assert inside["request_id"] == "bound-id-1" and inside["message"] == "inside"
    assert outside["request_id"] is None
