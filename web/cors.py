"""CORS for the reader's widget: an allowlist of book origins, bearer tokens and no cookies."""

from __future__ import annotations

from flask import Flask, Response
from flask_cors import CORS

from common.settings import Settings

# What the widget sends and must read; credentials mode stays off (tokens travel in headers,
# so no origin can ride on a reader's cookies).
ALLOWED_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"]
EXPOSED_HEADERS = ["Location", "Retry-After", "X-Request-ID"]
ALLOWED_METHODS = ["GET", "POST", "PATCH", "DELETE", "OPTIONS"]
PREFLIGHT_MAX_AGE_SECONDS = 600


def init_app(app: Flask, settings: Settings) -> None:
    """Answer the listed origins with CORS headers; with no origins listed, add nothing."""
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


def _vary_on_origin(response: Response) -> Response:
    # flask-cors skips Vary for a single listed origin, but answers still differ by Origin
    # (headers or none), so a shared cache must keep them apart.
    response.vary.add("Origin")
    return response
