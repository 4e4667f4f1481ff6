"""Ingest runs sent through the queue, with the worker's report written back to Redis."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import redis

from common.queue import enqueue_ingest, make_celery
from common.redis_client import make_redis
from common.settings import Settings

REPORT_TTL_SECONDS = 7 * 86400


def report_key(run_id: str) -> str:
    """Redis key holding an ingest run's report."""
    return f"bookchat:ingest:{run_id}"


def save_report(client: redis.Redis, run_id: str, report: dict[str, Any]) -> None:
    """Store a run's (partial or final) report."""
    client.set(report_key(run_id), json.dumps(report), ex=REPORT_TTL_SECONDS)


def load_report(client: redis.Redis, run_id: str) -> dict[str, Any] | None:
    """A run's report, if the worker wrote one."""
    raw: Any = client.get(report_key(run_id))
    return json.loads(raw) if raw else None


def run_ingest_via_queue(settings: Settings, path: str, *, full: bool, timeout: float) -> int:
    """Queue an ingest of `path`, wait for its report and print it."""
    from pathlib import Path

    run_id = uuid.uuid4().hex
    enqueue_ingest(make_celery(settings), str(Path(path).resolve()), full=full, run_id=run_id)
    client = make_redis(settings)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = load_report(client, run_id)
        if report and report.get("status") in ("completed", "failed"):
            print(json.dumps(report, indent=2))
            return 0 if report["status"] == "completed" and not report["failures"] else 1
        time.sleep(0.5)
    print(f"ingest run {run_id} did not finish within {timeout:.0f}s (is a worker running?)")
    return 2
