"""Every error response is RFC 9457 problem+json with the request id; mapped here only."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any, cast

from flask import Flask, Response, g, json, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from common.errors import BookchatError, MalformedJSON, PayloadTooLarge, UnsupportedMediaType

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,128}$")


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
    """A problem+json response."""
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


def _reject_malformed_json() -> None:
    if request.method not in ("POST", "PUT", "PATCH") or not request.content_length:
        return
    if not request.is_json:
        raise UnsupportedMediaType("send the request body as application/json")
    try:
        json.loads(request.get_data(cache=True))
    except ValueError as exc:
        raise MalformedJSON(f"request body is not valid JSON: {exc}") from exc


def _tag_response(response: Response) -> Response:
    response.headers["X-Request-ID"] = request_id()
    return response


def init_app(app: Flask) -> None:
    """Install the error handlers, the request-id header and the malformed-JSON check."""
    app.register_error_handler(BookchatError, error_problem)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_unexpected)
    app.before_request(_reject_malformed_json)
    app.after_request(_tag_response)
