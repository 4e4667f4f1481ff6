"""The operator's view of jobs of any kind, their attempts, and audit entries."""

from __future__ import annotations

from typing import Any

from common.admin.operator_jobs import FoundJob, is_dead_letter, owner_of
from common.admin.reprocess import reprocess_body
from common.platform.models import (
    AnswerFeedback,
    AuditEntry,
    ChatJob,
    IngestJob,
    JobAttempt,
    ReprocessJob,
)
from web.serializers import chat_job_body, ingest_job_body


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _summary(found: FoundJob) -> str:
    job = found.job
    if isinstance(job, ChatJob):
        return job.message[:200]
    if isinstance(job, IngestJob):
        return job.path
    return job.operation


def admin_job_body(found: FoundJob) -> dict[str, Any]:
    """One line of the operator's job list."""
    job = found.job
    return {
        "id": str(job.id),
        "object": "admin.job",
        "kind": found.kind.value,
        "status": job.status,
        "summary": _summary(found),
        "owner": str(owner) if (owner := owner_of(job)) else None,
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
        "dead_letter": is_dead_letter(job),
        "attempts": job.attempts,
        "waits": job.waits,
        "worker": job.worker,
        "label": job.label if isinstance(job, ChatJob) else None,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "completed_at": _iso(job.completed_at),
    }


def attempt_body(attempt: JobAttempt) -> dict[str, Any]:
    """One attempt of a job."""
    return {
        "number": attempt.number,
        "worker": attempt.worker,
        "started_at": _iso(attempt.started_at),
        "ended_at": _iso(attempt.ended_at),
        "outcome": attempt.outcome,
        "error_code": attempt.error_code,
        "error_message": attempt.error_message,
        "traceback": attempt.traceback,
    }


def admin_job_detail(
    found: FoundJob, attempts: list[JobAttempt], feedback: AnswerFeedback | None = None
) -> dict[str, Any]:
    """A job as the operator inspects it: the summary, the job itself, and every attempt.

    A chat job shows its label, top similarity and the reader's rating (`feedback`).
    """
    job = found.job
    if isinstance(job, ChatJob):
        detail = {**chat_job_body(job, feedback), "top_similarity": job.top_similarity}
    elif isinstance(job, IngestJob):
        detail = ingest_job_body(job)
    else:
        assert isinstance(job, ReprocessJob)
        detail = reprocess_body(job)
    return {**admin_job_body(found), "job": detail, "history": [attempt_body(a) for a in attempts]}


def audit_body(entry: AuditEntry) -> dict[str, Any]:
    """One audit entry."""
    return {
        "id": entry.id,
        "object": "audit.entry",
        "at": _iso(entry.at),
        "actor": entry.actor,
        "actor_id": str(entry.actor_id) if entry.actor_id else None,
        "action": entry.action,
        "target_kind": entry.target_kind,
        "target_id": entry.target_id,
        "outcome": entry.outcome,
        "detail": entry.detail,
        "request_id": entry.request_id,
    }


def list_body(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """OpenAI's list shape around already-serialized items."""
    return {
        "object": "list",
        "data": data,
        "first_id": str(data[0]["id"]) if data else None,
        "last_id": str(data[-1]["id"]) if data else None,
        "has_more": has_more,
    }
