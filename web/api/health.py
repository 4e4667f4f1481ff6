"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask_openapi3 import APIBlueprint, Tag
from sqlalchemy import text

from common.heartbeat import live_workers
from common.queue import CHAT_QUEUE
from web.resources import resources

bp = APIBlueprint("health", __name__, abp_tags=[Tag(name="health")])


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up."""
    return jsonify({"status": "ok"})


def _check_database() -> dict[str, Any]:
    try:
        with resources().engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"ok": True}
    except Exception as exc:  # any driver error means not ready
        return {"ok": False, "error": type(exc).__name__}


def _check_redis_and_workers() -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        resources().redis.ping()
        workers = live_workers(resources().redis)
    except Exception as exc:  # any client error means not ready
        error = {"ok": False, "error": type(exc).__name__}
        return error, error
    chat_consumers = [w for w in workers if CHAT_QUEUE in w["queues"]]
    return {"ok": True}, {"ok": bool(chat_consumers), "live": workers}


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Redis, the database and a live chat worker are all reachable."""
    redis_check, worker_check = _check_redis_and_workers()
    checks = {"database": _check_database(), "redis": redis_check, "workers": worker_check}
    ready = all(check["ok"] for check in checks.values())
    body = {"status": "ready" if ready else "not_ready", "checks": checks}
    return jsonify(body), 200 if ready else 503
