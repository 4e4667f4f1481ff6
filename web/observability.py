"""Per-request logging and metrics: the request id in every log line, one access line, histograms.

The access line replaces gunicorn's (which is plain text and knows no request id); latency is
measured to the response's first byte, so a Server-Sent Events stream counts its set-up only
(the open-streams gauge counts the streams themselves).
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

from common.platform.logging_setup import bind_request_id, configure_logging
from common.platform.observability import instruments
from common.platform.settings import Settings
from web.problems import request_id

access_log = logging.getLogger("bookchat.access")
UNMATCHED_ROUTE = "<unmatched>"  # 404s: never the raw path, which would explode the labels


def _start_request() -> None:
    g.started = time.perf_counter()
    bind_request_id(request_id())


def _record_request(response: Response) -> Response:
    elapsed = time.perf_counter() - g.get("started", time.perf_counter())
    route = request.url_rule.rule if request.url_rule is not None else UNMATCHED_ROUTE
    labels = {"method": request.method, "route": route, "status": str(response.status_code)}
    metrics = instruments()
    metrics.http_requests.labels(**labels).inc()
    metrics.http_duration.labels(**labels).observe(elapsed)
    access_log.info(
        '"%s %s" %s',
        request.method,
        request.path,
        response.status_code,
        extra={**labels, "path": request.path, "duration_ms": round(elapsed * 1000, 2)},
    )
    return response


def _forget_request_id(_exc: BaseException | None) -> None:
    bind_request_id(None)


def init_app(app: Flask, settings: Settings) -> None:
    """JSON (or text) logs with request ids, an access line and HTTP metrics for every request."""
    configure_logging(settings)
    instruments()  # fail at start, not at the first request, if the metrics folder is wrong
    app.before_request(_start_request)
    app.after_request(_record_request)
    app.teardown_request(_forget_request_id)
