"""The operator's view of every job: find, inspect, retry and cancel jobs of any kind.

Dead letters are failed jobs whose cause was outside the request (the model, a lost worker, an
unexpected error): retrying them can succeed. A failure caused by the request itself (a bad
request, a prompt too large) is not a dead letter.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from common.jobs.events import JobEvents
from common.jobs.lifecycle import MODELS, Job, end_attempt, job_attempts, model_of
from common.platform.errors import Conflict, NotFound
from common.platform.models import (
    AttemptOutcome,
    ChatJob,
    IngestJob,
    JobAttempt,
    JobKind,
    JobStatus,
    ReprocessJob,
    utcnow,
)

DEAD_LETTER_CODES = frozenset(
    {
        "worker_lost",
        "llm_unavailable",
        "index_unavailable",
        "internal_error",
        "timeout",
        "queue_unavailable",
        "insufficient_quota",
        "llm_auth_failed",
        "ingest_failed",
    }
)
RETRYABLE = (JobStatus.FAILED.value, JobStatus.CANCELLED.value)


class JobNotRetryable(Conflict):
    code, title = "job_not_retryable", "Job cannot be retried"


@dataclass(frozen=True)
class JobFilters:
    """Which jobs an operator means; every field narrows the selection."""

    status: str | None = None
    kind: JobKind | None = None
    user: uuid.UUID | None = None
    error_code: str | None = None
    since: datetime | None = None
    dead: bool = False  # only dead letters
    label: str | None = None  # only chat jobs with this AnswerLabel

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for a reprocess job's row and the audit log."""
        return {
            "status": self.status,
            "kind": self.kind.value if self.kind else None,
            "user": str(self.user) if self.user else None,
            "error_code": self.error_code,
            "since": self.since.isoformat() if self.since else None,
            "dead": self.dead,
            "label": self.label,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> JobFilters:
        """The inverse of `as_dict`."""
        return cls(
            status=values.get("status"),
            kind=JobKind(values["kind"]) if values.get("kind") else None,
            user=uuid.UUID(values["user"]) if values.get("user") else None,
            error_code=values.get("error_code"),
            since=datetime.fromisoformat(values["since"]) if values.get("since") else None,
            dead=bool(values.get("dead")),
            label=values.get("label"),
        )


@dataclass(frozen=True)
class FoundJob:
    kind: JobKind
    job: Job


def owner_of(job: Job) -> uuid.UUID | None:
    """The account the job belongs to (the reader, or the admin who asked)."""
    return job.user_id if isinstance(job, ChatJob) else job.requested_by


def is_dead_letter(job: Job) -> bool:
    """A failed job that a retry may fix."""
    return job.status == JobStatus.FAILED.value and job.error_code in DEAD_LETTER_CODES


def _selection(kind: JobKind, filters: JobFilters) -> Select[Any]:
    model = model_of(kind)
    query = select(model)
    if filters.status:
        query = query.where(model.status == filters.status)
    if filters.user:
        owner = model.user_id if model is ChatJob else model.requested_by  # type: ignore[union-attr]
        query = query.where(owner == filters.user)
    if filters.error_code:
        query = query.where(model.error_code == filters.error_code)
    if filters.since:
        query = query.where(model.created_at >= filters.since)
    if filters.dead:
        query = query.where(
            model.status == JobStatus.FAILED.value, model.error_code.in_(DEAD_LETTER_CODES)
        )
    if filters.label:
        query = query.where(ChatJob.label == filters.label)
    return query


def _kinds(filters: JobFilters) -> list[JobKind]:
    kinds = [filters.kind] if filters.kind else list(MODELS)
    # Only chat jobs carry a label.
    return [k for k in kinds if k == JobKind.CHAT] if filters.label else kinds


def list_jobs(
    session: Session, filters: JobFilters, limit: int, after: uuid.UUID | None = None
) -> tuple[list[FoundJob], bool]:
    """Jobs newest first, after the job `after` (a cursor stable under inserts); True if more."""
    cursor = find_job(session, after).job if after else None
    found: list[FoundJob] = []
    for kind in _kinds(filters):
        model = model_of(kind)
        query = _selection(kind, filters)
        if cursor is not None:
            query = query.where(
                or_(
                    model.created_at < cursor.created_at,
                    and_(model.created_at == cursor.created_at, model.id < cursor.id),
                )
            )
        query = query.order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1)
        found.extend(FoundJob(kind, job) for job in session.scalars(query))
    found.sort(key=lambda f: (f.job.created_at, f.job.id), reverse=True)
    return found[:limit], len(found) > limit


def iter_matching(session: Session, filters: JobFilters, batch: int = 200) -> list[FoundJob]:
    """Every job the filters select, oldest first (for bulk operations)."""
    found: list[FoundJob] = []
    for kind in _kinds(filters):
        model = model_of(kind)
        query = _selection(kind, filters).order_by(model.created_at, model.id)
        rows = session.scalars(query.execution_options(yield_per=batch))
        found.extend(FoundJob(kind, job) for job in rows)
    return found


def find_job(session: Session, job_id: uuid.UUID) -> FoundJob:
    """The job with this id, of whatever kind, or NotFound."""
    for kind, model in MODELS.items():
        job = session.get(model, job_id)
        if isinstance(job, ChatJob | IngestJob | ReprocessJob):
            return FoundJob(kind, job)
    raise NotFound(f"job {job_id} not found")


def attempts_of(session: Session, found: FoundJob) -> list[JobAttempt]:
    """The job's attempts, first to last."""
    return job_attempts(session, found.kind, found.job.id)


def retry_job(session: Session, job_id: uuid.UUID) -> FoundJob:
    """Put a failed or cancelled job back in the queue as a new attempt; its history stays."""
    found = find_job(session, job_id)
    job = found.job
    if job.status not in RETRYABLE:
        raise JobNotRetryable(f"job {job_id} is {job.status}; only failed or cancelled jobs retry")
    job.status = JobStatus.QUEUED.value
    job.error_code = job.error_message = None
    job.completed_at = job.lease_expires_at = job.worker = None
    # The watchdog sends it on its next pass (about a second).
    job.due_at, job.enqueued_at = utcnow(), None
    if isinstance(job, ChatJob):
        job.queued_at = utcnow()  # a fresh wait budget for the model
    session.flush()
    return found


def restart_stream(events: JobEvents, found: FoundJob) -> None:
    """Give a retried chat job a fresh event stream (its old ending and cancel flag go).

    Call it before the retry commits: if Redis is away the retry fails rather than leave the
    reader a stream whose old `error` or `done` precedes the new attempt.
    """
    if found.kind == JobKind.CHAT:
        retried = {"status": JobStatus.QUEUED.value, "reason": "retried by an operator"}
        events.restart(found.job.id, retried)


def cancel_job(session: Session, job_id: uuid.UUID) -> FoundJob:
    """Cancel a queued or running job of any kind (a running one stops at its next step)."""
    found = find_job(session, job_id)
    job = found.job
    if job.job_status.is_terminal:
        raise Conflict(f"job {job_id} is already {job.status}")
    if job.status == JobStatus.IN_PROGRESS.value:
        end_attempt(session, found.kind, job.id, job.attempts, AttemptOutcome.CANCELLED)
    job.status = JobStatus.CANCELLED.value
    job.completed_at = utcnow()
    job.lease_expires_at = None
    session.flush()
    return found
