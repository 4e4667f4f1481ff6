"""The OpenAPI document as the server really answers: problem+json errors, probes, streams.

flask-openapi3 declares every response as application/json and adds a 422 of its own model to
every operation; the app sends problem+json for every error and has a few non-JSON endpoints.
`BookchatOpenAPI` finishes the generated document once, where flask-openapi3 builds it: every
status an operation can answer is declared, those that the app's machinery adds (rate limits
read from the limiter, caps, budgets, typed path ids) included, with links between operations.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask_openapi3 import OpenAPI
from werkzeug.routing import Rule, UnicodeConverter

from common.platform.api_types import Problem
from web.openapi_links import add_links
from web.openapi_stream import EVENT_STREAM_RESPONSE, event_schemas
from web.problems import PROBLEM_JSON

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": _PROBLEM_REF}}

# Errors any request can meet before its view runs (web/input_limits.py, web/problems.py).
_ANY_REQUEST_ERRORS = {
    "400": "Bad request: NUL or invalid text in the query string (`invalid_input`)",
    "414": "The URL is too long (`request_uri_too_long`)",
    "431": "Too many or too large headers (`request_header_fields_too_large`)",
    "500": "An unexpected error (`internal_error`), logged with the request id",
}
_BODY_ERRORS = {
    "400": "The body is not JSON, nests too deeply, or holds NUL or lone surrogates",
    "413": "The body is larger than the server accepts (`payload_too_large`)",
    "415": "The body is not application/json in UTF-8 (`unsupported_media_type`)",
}
# Every 429 and every 503 problem says when to try again (platform/errors.py, problems.py).
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}

# Statuses other parts of the app answer on given endpoints (caps, budgets, tokens), by endpoint.
EXPECTED: dict[str, dict[str, str]] = {
    # Login and sign-up throttles per address (and account and address), whichever limiter
    # counts them: declared here too, so the document keeps them if they leave flask-limiter.
    "auth.login": {
        "429": "Too many attempts from this address, or for this account from this address",
        "503": "The login limiter cannot count (Redis away): refused before any password check",
    },
    "auth.signup": {"429": "Too many sign-ups from this address"},
    "chat_jobs.read": {"429": "Too many long-polls open for this user, guest or job"},
    "chat_jobs.events": {"429": "Too many event streams open for this user, guest or job"},
    # Private probes: a metrics token, an admin's token, or loopback (else 404, no such page).
    "metrics.metrics": {
        "401": "The metrics token or bearer token is wrong",
        "403": "The bearer token is not an administrator's",
        "404": "Not served to this caller",
    },
    "health.readyz": {
        "401": "`detail`: the metrics token or bearer token is wrong",
        "403": "`detail`: the bearer token is not an administrator's",
        "404": "`detail`: not served to this caller",
    },
}
for _endpoint in ("chat_jobs.submit", "chapters.personalize", "chapters.translate"):
    EXPECTED[_endpoint] = {
        "503": "The daily token budget is spent (`budget_exhausted`), the queue is full "
        "(`overloaded`) or a store is away",
    }

# Private probes (web/private_probes.py): who may not read them.
_PRIVATE_ERRORS: dict[str, Any] = {
    "401": {"description": "A wrong metrics token or an invalid access token"},
    "403": {"description": "An access token that is not an administrator's"},
    "404": {"description": "No METRICS_TOKEN is set and the request is not from this host"},
}
# `checks` only with `detail=true`, for the readers of the private probes.
_READINESS = {
    "type": "object",
    "required": ["status"],  # `checks` only for the private readers (`detail`)
    "properties": {
        "status": {"type": "string", "enum": ["ready", "not_ready"]},
        "checks": {"type": "object", "additionalProperties": {"type": "object"}},
    },
}
_PLAIN_ANSWERS: dict[tuple[str, str], dict[str, Any]] = {
    ("/healthz", "get"): {
        "200": {
            "description": "The process is up",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["status"],
                        "properties": {"status": {"type": "string", "enum": ["ok"]}},
                    }
                }
            },
        }
    },
    ("/readyz", "get"): {
        "200": {
            "description": "Ready: every check passed",
            "content": {"application/json": {"schema": _READINESS}},
        },
        # A probe's report, not a problem: load balancers and operators read the checks.
        "503": {
            "description": "Not ready: the failing checks say why",
            "content": {"application/json": {"schema": _READINESS}},
        },
        **_PRIVATE_ERRORS,
    },
    ("/metrics", "get"): {
        "200": {
            "description": "Counters in the Prometheus text exposition format 0.0.4",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **_PRIVATE_ERRORS,
        "503": {"description": "Redis cannot be reached (`redis_unavailable`)"},
    },
    ("/v1/chat/jobs/{job_id}/events", "get"): {"200": EVENT_STREAM_RESPONSE},
}


def _openapi_path(rule: str) -> str:
    return re.sub(r"<([^<:]+:)?", "{", rule).replace(">", "}")


def _rate_limited(app: Flask) -> dict[str, list[str]]:
    """Endpoint -> the scopes of the limits web/rate_limits.py applies to it (each declares 429)."""
    limited: dict[str, list[str]] = app.extensions.get("bookchat.rate_limited", {})
    return limited


def _typed_params(rule: Rule) -> set[str]:
    # Path parameters the URL map types (uuid): any other value matches no route, a 404.
    converters = rule._converters  # werkzeug keeps no public view of a rule's converters
    return {name for name, conv in converters.items() if not isinstance(conv, UnicodeConverter)}


def declare_app_answers(app: Flask, spec: dict[str, Any]) -> None:
    """Declare per route what the app's machinery answers: limits, caps, budgets, typed ids."""
    limited = _rate_limited(app)
    for rule in app.url_map.iter_rules():
        item = spec["paths"].get(_openapi_path(rule.rule), {})
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            operation = item.get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            if rule.endpoint in limited:  # first: its description names the limits
                scopes = ", ".join(limited[rule.endpoint])
                responses.setdefault("429", {"description": f"A rate limit is reached: {scopes}"})
            for status, description in EXPECTED.get(rule.endpoint, {}).items():
                responses.setdefault(status, {"description": description})
            typed = _typed_params(rule)
            if typed:
                operation["x-routed-parameters"] = sorted(typed)


def _takes_input(operation: dict[str, Any]) -> bool:
    routed = set(operation.pop("x-routed-parameters", []))
    checked = [p for p in operation.get("parameters", []) if p["name"] not in routed]
    return bool(checked) or "requestBody" in operation


def _finish_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    plain = _PLAIN_ANSWERS.get((path, method), {})
    responses.update(plain)
    if not _takes_input(operation):
        responses.pop("422", None)  # flask-openapi3 adds it everywhere; nothing to validate
    extra = {**_ANY_REQUEST_ERRORS, **(_BODY_ERRORS if "requestBody" in operation else {})}
    query = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}
    if "after" in query:
        extra["404"] = "The `after` cursor names no item (`not_found`)"
    for status, description in extra.items():
        responses.setdefault(status, {"description": description})
    for status, response in responses.items():
        if int(status) >= 400 and "content" not in plain.get(status, {}):
            response["content"] = _PROBLEM_CONTENT
            if status in ("429", "503"):
                response["headers"] = _RETRY_AFTER
    operation["responses"] = dict(sorted(responses.items()))


def finish_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Declare problem+json for every error and the real media types of the plain endpoints."""
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            _finish_operation(path, method, operation)
    add_links(spec)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(event_schemas())
    schemas.pop("ValidationErrorModel", None)  # our 422 is a Problem with `errors`
    return spec


class BookchatOpenAPI(OpenAPI):
    """flask-openapi3's app whose generated document is finished by `finish_spec`."""

    def generate_spec_json(self) -> None:
        """Generate the document as flask-openapi3 does, then finish it."""
        super().generate_spec_json()
        declare_app_answers(self, self.spec_json)
        self.spec_json = finish_spec(self.spec_json)
