"""CORS for the reader's widget: an allowlist of book origins, bearer tokens and no cookies."""

from __future__ import annotations

from functools import partial
from urllib.parse import urlsplit

from flask import Flask, Response, request
from flask_cors import CORS

from common.platform.errors import OriginNotAllowed
from common.platform.settings import Settings

# What the widget sends and must read; credentials mode stays off (tokens travel in headers,
# so no origin can ride on a reader's cookies).
ALLOWED_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"]
EXPOSED_HEADERS = ["Location", "Retry-After", "X-Request-ID"]
ALLOWED_METHODS = ["GET", "POST", "PATCH", "DELETE", "OPTIONS"]
PREFLIGHT_MAX_AGE_SECONDS = 600
# Endpoints a browser reaches without a preflight (a bare POST is a "simple" request), so CORS
# alone would let any site run them and only hide the answer: these check the Origin themselves.
ORIGIN_CHECKED_ENDPOINTS = frozenset({"auth.guest"})


def init_app(app: Flask, settings: Settings) -> None:
    """Answer the listed origins with CORS headers, and refuse the others' guest tokens."""
    # Before the rate limiter (registered later): a refused site never spends a reader's limit.
    app.before_request(partial(refuse_foreign_origin, frozenset(settings.cors_origins)))
    if not settings.cors_origins:
        return
    CORS(
        app,
        origins=settings.cors_origins,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        methods=ALLOWED_METHODS,
        max_age=PREFLIGHT_MAX_AGE_SECONDS,
        supports_credentials=False,
        send_wildcard=False,
        vary_header=True,
    )
    app.after_request(_vary_on_origin)


def origin_allowed(origin: str, allowed: frozenset[str]) -> bool:
    """Whether a browser on `origin` may use the API: listed, or the API's own site."""
    if origin.lower() in allowed:
        return True
    # Same origin (the demo page): compared by host and port, since behind a TLS proxy the
    # API sees http while the page says https.
    return urlsplit(origin.lower()).netloc == request.host.lower()


def refuse_foreign_origin(allowed: frozenset[str]) -> None:
    """403 origin_not_allowed for a checked endpoint called from a site that is not allowed.

    Requests without an Origin header (curl, servers, the CLI) are not browsers' and pass.
    """
    origin = request.headers.get("Origin")
    if (
        origin is None
        or request.method == "OPTIONS"
        or request.endpoint not in ORIGIN_CHECKED_ENDPOINTS
        or origin_allowed(origin, allowed)
    ):
        return
    raise OriginNotAllowed(
        f"this API does not serve pages on {origin[:200]}; its operator can add that origin "
        "to CORS_ORIGINS",
        origin=origin[:200],
        setting="CORS_ORIGINS",
    )


def _vary_on_origin(response: Response) -> Response:
    # flask-cors skips Vary for a single listed origin, but answers still differ by Origin
    # (headers or none), so a shared cache must keep them apart.
    response.vary.add("Origin")
    return response
