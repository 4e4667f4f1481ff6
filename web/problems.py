"""Every error response is RFC 9457 problem+json with the request id; mapped here only."""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any, cast

import redis
from flask import Flask, Response, current_app, g, json, request
from gunicorn.http.errors import NoMoreData, ParseException
from kombu.exceptions import OperationalError as BrokerConnectionError
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

from common.platform.db import is_unavailable
from common.platform.errors import (
    BookchatError,
    InvalidInput,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from web.input_limits import answer_options, check_json_body, check_request_size

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,128}$")

# Every 503 tells the client when to come back; outages are short or they are incidents.
RETRY_AFTER_SECONDS = 5
# Redis unreachable: refused, reset, timed out, still loading, pool exhausted. kombu raises its
# OperationalError when Celery cannot reach the broker, which is the same Redis.
REDIS_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    BrokerConnectionError,
)
# gunicorn parses a chunked body only as the app reads it, so broken framing (a bad chunk size,
# a missing CRLF, a connection closed mid-chunk) surfaces as these errors from the read.
BODY_FRAMING_ERRORS: tuple[type[Exception], ...] = (ParseException, NoMoreData)


@dataclass(frozen=True)
class Outage:
    """A backing service the request needed and could not reach."""

    code: str
    title: str
    detail: str


REDIS_OUTAGE = Outage(
    "redis_unavailable",
    "Redis unavailable",
    "the job queue and event store cannot be reached; try again shortly",
)
DATABASE_OUTAGE = Outage(
    "database_unavailable",
    "Database unavailable",
    "the database cannot be reached; try again shortly",
)


def request_id() -> str:
    """This request's id: the caller's X-Request-ID when sane, else a fresh one."""
    if "request_id" not in g:
        supplied = request.headers.get("X-Request-ID", "")
        g.request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex
    return str(g.request_id)


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response:
    """A problem+json response; a 503 says when to retry (Retry-After)."""
    body = {
        "type": f"/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.path,
        "request_id": request_id(),
        "code": code,
        **extensions,
    }
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    if status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response.headers.update(headers or {})
    return response


def validation_problem(exc: ValidationError) -> Response:
    """Pydantic validation errors as a 422 problem listing each bad field."""
    errors = [
        {
            "loc": [str(part) for part in err["loc"]],
            "msg": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors(include_url=False, include_input=False)
    ]
    fields = ", ".join(".".join(e["loc"]) or "body" for e in errors)
    return problem(
        422, "validation_error", "Validation failed", f"invalid fields: {fields}", errors=errors
    )


def error_problem(exc: BookchatError) -> Response:
    """One of our own errors as a problem (the handler for them all, JWT failures included)."""
    return problem(exc.status, exc.code, exc.title, exc.detail, exc.headers, **exc.extensions)


def outage_of(exc: BaseException) -> Outage | None:
    """The unreachable service behind this error, or None when it is not an outage."""
    if isinstance(exc, REDIS_ERRORS):
        return REDIS_OUTAGE
    if is_unavailable(exc):
        return DATABASE_OUTAGE
    return None


def outage_problem(exc: BaseException) -> Response | None:
    """A 503 with Retry-After for an outage (logged as one line), or None for any other error."""
    outage = outage_of(exc)
    if outage is None:
        return None
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""]
    log.warning(
        "%s %s: %s (%s: %s)",
        request.method,
        request.path,
        outage.code,
        type(exc).__name__,
        reason[0],
    )
    return problem(503, outage.code, outage.title, outage.detail)


def _handle_infrastructure_error(exc: Exception) -> Response:
    unavailable = outage_problem(exc)
    return unavailable if unavailable is not None else _handle_unexpected(exc)


def _handle_http_exception(exc: HTTPException) -> Response:
    if exc.response is not None and exc.response.mimetype == PROBLEM_JSON:
        return cast(Response, exc.response)  # already a problem, e.g. from request validation
    status = exc.code or 500
    if status == 413:
        return error_problem(PayloadTooLarge())
    code = (exc.name or "error").lower().replace(" ", "_")
    headers = (
        {"Allow": ", ".join(allowed)} if (allowed := getattr(exc, "valid_methods", None)) else {}
    )
    return problem(status, code, exc.name or "Error", exc.description or "", headers)


def _handle_unexpected(exc: Exception) -> Response:
    log.exception("unhandled error in %s %s", request.method, request.path)
    return problem(500, "internal_error", "Internal server error", "an unexpected error occurred")


_FORM_BLUEPRINTS = "bookchat.form_blueprints"
FORM_MIMETYPE = "application/x-www-form-urlencoded"


def accept_form_posts(app: Flask, blueprint: str) -> None:
    """Let this blueprint's routes take HTML form posts (urlencoded) instead of JSON bodies."""
    app.extensions.setdefault(_FORM_BLUEPRINTS, set()).add(blueprint)


def _reject_malformed_json() -> None:
    # Read the body even without a Content-Length: a chunked body must not skip the checks.
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    if request.blueprint in current_app.extensions.get(_FORM_BLUEPRINTS, ()):
        if request.content_length and request.mimetype != FORM_MIMETYPE:
            raise UnsupportedMediaType("send the form as application/x-www-form-urlencoded")
        return
    try:
        raw = request.get_data(cache=True)
    except BODY_FRAMING_ERRORS as exc:
        raise InvalidInput(f"the request body could not be read: {type(exc).__name__}") from exc
    if not raw:
        return
    if not request.is_json:
        raise UnsupportedMediaType("send the request body as application/json")
    if request.mimetype_params.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
        raise UnsupportedMediaType("send JSON encoded as UTF-8")
    check_json_body(raw)  # depth before parsing, then syntax and strings


def _tag_response(response: Response) -> Response:
    response.headers["X-Request-ID"] = request_id()
    return response


def init_app(app: Flask) -> None:
    """Install the error handlers (outages as 503), the request-id header and the input checks."""
    app.register_error_handler(BookchatError, error_problem)
    app.register_error_handler(HTTPException, _handle_http_exception)
    for infrastructure_error in (*REDIS_ERRORS, sa_exc.SQLAlchemyError):
        app.register_error_handler(infrastructure_error, _handle_infrastructure_error)
    app.register_error_handler(Exception, _handle_unexpected)
    # App hooks run before the blueprints' auth hooks, in this order.
    app.before_request(answer_options)
    app.before_request(check_request_size)
    app.before_request(_reject_malformed_json)
    app.after_request(_tag_response)
