"""The OpenAPI document as the server really answers: problem+json errors, probes, streams.

flask-openapi3 declares every response as application/json and adds a 422 of its own model to
every operation; the app sends problem+json for every error and has a few non-JSON endpoints.
`BookchatOpenAPI` finishes the generated document once, where flask-openapi3 builds it.
"""

from __future__ import annotations

from typing import Any

from flask_openapi3 import OpenAPI

from common.schemas import Problem
from web.problems import PROBLEM_JSON

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": _PROBLEM_REF}}

# Errors any request can meet before its view runs (web/limits.py, web/problems.py).
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

# Private probes (web/private_probes.py): who may not read them.
_PRIVATE_ERRORS: dict[str, Any] = {
    "401": {"description": "A wrong metrics token or an invalid access token"},
    "403": {"description": "An access token that is not an administrator's"},
    "404": {"description": "No METRICS_TOKEN is set and the request is not from this host"},
}
# `checks` only with `detail=true`, for the readers of the private probes.
_READINESS = {
    "type": "object",
    "required": ["status"],
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
    ("/v1/chat/jobs/{job_id}/events", "get"): {
        "200": {
            "description": (
                "Server-Sent Events: `snapshot`, then `token`/`status`/`done` events with ids "
                "to resume from (Last-Event-ID)"
            ),
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
}


def _takes_input(operation: dict[str, Any]) -> bool:
    return bool(operation.get("parameters")) or "requestBody" in operation


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
    operation["responses"] = dict(sorted(responses.items()))


def finish_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Declare problem+json for every error and the real media types of the plain endpoints."""
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            _finish_operation(path, method, operation)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.pop("ValidationErrorModel", None)  # our 422 is a Problem with `errors`
    return spec


class BookchatOpenAPI(OpenAPI):
    """flask-openapi3's app whose generated document is finished by `finish_spec`."""

    def generate_spec_json(self) -> None:
        """Generate the document as flask-openapi3 does, then finish it."""
        super().generate_spec_json()
        self.spec_json = finish_spec(self.spec_json)
