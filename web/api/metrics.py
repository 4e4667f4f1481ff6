"""Prometheus-style counters: the LLM layer's calls, 429s, retries and waits, and queue depths."""

from __future__ import annotations

import re

from flask import Response
from flask_openapi3 import APIBlueprint, Tag

from common.llm.metrics import Counters
from common.queue import ALL_QUEUES
from web.resources import resources

bp = APIBlueprint("metrics", __name__, abp_tags=[Tag(name="health")])
_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")


@bp.get("/metrics")
def metrics() -> Response:
    """Counters in the Prometheus text format (scrape it from inside your network)."""
    client = resources().redis
    lines = ["# TYPE bookchat_llm_total counter"]
    for name, value in sorted(Counters(client).snapshot().items()):
        lines.append(f'bookchat_llm_total{{counter="{_UNSAFE.sub("_", name)}"}} {value:g}')
    lines.append("# TYPE bookchat_queue_depth gauge")
    for queue in ALL_QUEUES:
        lines.append(f'bookchat_queue_depth{{queue="{queue}"}} {client.llen(queue)}')
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")
