"""Liveness and readiness probes.

`/readyz` tells anyone only whether the service is ready (200 or 503 and a status word); the
report of each check, which names worker hosts and the ingested folder, is for the readers of
web/private_probes.py (`/readyz?detail=true`). Checks run at most once per METRICS_CACHE_SECONDS.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field
from sqlalchemy import text

from common.admin.index_operations import index_state
from common.jobs.queue import ALL_QUEUES, CHAT_QUEUE
from common.jobs.worker_heartbeats import live_workers
from common.llm.circuit import CircuitBreaker
from common.platform.api_types import QueryBool
from web.private_probes import probe_cache, require_private_reader
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


def _check_redis_and_workers() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    res = resources()
    try:
        res.redis.ping()
        workers = live_workers(res.redis)
        circuit = CircuitBreaker(res.redis, "openai").state()
    except Exception as exc:  # any client error means not ready
        error = {"ok": False, "error": type(exc).__name__}
        return error, error, {"ok": True, "state": "unknown"}
    by_queue = {q: sorted(w["name"] for w in workers if q in w["queues"]) for q in ALL_QUEUES}
    worker_check = {"ok": bool(by_queue[CHAT_QUEUE]), "live": workers, "queues": by_queue}
    # An open circuit is not "not ready": jobs wait for the model instead of failing.
    return {"ok": True}, worker_check, {"ok": True, **circuit}


def _check_index() -> dict[str, Any]:
    """The index as the last folder ingest left it (the API never opens Qdrant itself)."""
    res = resources()
    try:
        with res.sessions() as session:
            state = index_state(session, res.settings.qdrant_collection)
    except Exception as exc:  # reported by the database check
        return {"ok": False, "error": type(exc).__name__}
    if state["collection"] is None:
        return {"ok": False, "detail": "no textbook has been ingested yet"}
    last = state["last_ingest"]
    return {
        "ok": True,
        "collection": state["collection"],
        "documents": state["documents"],
        "last_ingest": {
            "id": str(last["id"]),
            "path": state["folder"],
            "completed_at": last["completed_at"].isoformat() if last["completed_at"] else None,
        },
    }


class ReadinessQuery(BaseModel):
    """`detail=true`: every check's report (metrics token, admin, or loopback only)."""

    detail: QueryBool = Field(default=False, description="include each check's report (private)")


def readiness_report() -> dict[str, Any]:
    """Run every check: `status` ready or not_ready, and `checks` by name."""
    redis_check, worker_check, circuit_check = _check_redis_and_workers()
    checks = {
        "database": _check_database(),
        "redis": redis_check,
        "workers": worker_check,
        "index": _check_index(),
        "circuit": circuit_check,
    }
    ready = all(check["ok"] for check in checks.values())
    return {"status": "ready" if ready else "not_ready", "checks": checks}


@bp.get("/readyz")
def readyz(query: ReadinessQuery) -> tuple[Response, int]:
    """Ready when a question would be answered: database, Redis, a chat worker and an index."""
    if query.detail:
        require_private_reader()
    report: dict[str, Any] = probe_cache("readiness").get(readiness_report)
    code = 200 if report["status"] == "ready" else 503
    return jsonify(report if query.detail else {"status": report["status"]}), code
