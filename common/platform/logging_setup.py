"""One logging set-up for every process: JSON lines (or text for `bookchat dev`) with request ids.

The request id lives in a context variable: the web app sets it for each request (from a sane
`X-Request-ID` or a fresh one), `common.jobs.queue` sends it in the headers of the task a request
enqueues, and the worker sets it around that task, so one id follows a question from the HTTP
request to the worker's log lines about it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

from common.platform.settings import Settings

REQUEST_ID_HEADER = "bookchat_request_id"  # the Celery message header carrying it
_request_id: ContextVar[str | None] = ContextVar("bookchat_request_id", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def current_request_id() -> str | None:
    """The request id of the request or task being served here, if any."""
    return _request_id.get()


def bind_request_id(value: str | None) -> object:
    """Make `value` the current request id; returns a token for `unbind_request_id`."""
    return _request_id.set(value)


def unbind_request_id(token: object) -> None:
    """Restore the request id that was current before `bind_request_id`."""
    _request_id.reset(token)  # type: ignore[arg-type]


@contextmanager
def request_id_bound(value: str | None) -> Iterator[None]:
    """The request id is `value` inside the block."""
    token = _request_id.set(value)
    try:
        yield
    finally:
        _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds the current request id (or None) to every record as `request_id`."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keep the record; just tag it."""
        record.request_id = _request_id.get()
        return True


def log_format(settings: Settings) -> str:
    """`json` or `text`: LOG_FORMAT, else text in development and JSON elsewhere."""
    if settings.log_format:
        return settings.log_format
    return "text" if settings.environment == "development" else "json"


def make_formatter(kind: str) -> logging.Formatter:
    """A JSON formatter (time, level, logger, message, request_id, extras) or a text one."""
    if kind == "text":
        return logging.Formatter(TEXT_FORMAT)
    return JsonFormatter(
        "{levelname}{name}{message}{request_id}",
        style="{",
        timestamp="time",
        rename_fields={"levelname": "level", "name": "logger"},
    )


class _OurHandler(logging.StreamHandler):
    """The root handler this module installs (so a second call replaces it, not adds one)."""


def configure_logging(settings: Settings, level: str | int = "INFO") -> None:
    """Send every logger's records to stderr, formatted per LOG_FORMAT, tagged with request ids."""
    handler = _OurHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(make_formatter(log_format(settings)))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _OurHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
