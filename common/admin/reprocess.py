"""Bulk reprocessing: an operator's "retry every job that ..." as a job of its own.

The request is recorded as a `reprocess_jobs` row and run on the `reprocess` queue, so a retry
of thousands of jobs never blocks the API and shows its progress. Running the same bulk retry
twice queues nothing twice: the first run moves the jobs out of `failed`, so the second
matches them no more (and an Idempotency-Key returns the first run's row outright).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from celery import Celery
from redis import RedisError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common.admin.operator_jobs import RETRYABLE, FoundJob, JobFilters, iter_matching, retry_job
from common.jobs.lifecycle import fenced_update, finish_attempt
from common.jobs.queue import enqueue_reprocess
from common.platform.after_commit import enqueue_after_commit
from common.platform.errors import IdempotencyKeyReused, NotFound, ServiceUnavailable
from common.platform.models import JobKind, JobStatus, ReprocessJob, utcnow

log = logging.getLogger(__name__)
BULK_RETRY = "bulk_retry"
PROGRESS_EVERY = 50


def _fingerprint(filters: JobFilters, dry_run: bool) -> str:
    canonical = json.dumps({"filters": filters.as_dict(), "dry_run": dry_run}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def send_after_commit(session: Session, celery: Celery, job_id: uuid.UUID) -> None:
    """Send the reprocess job once the session commits; if the broker refuses it, mark the job
    failed (`queue_unavailable`) in a session of its own and answer 503."""
    bind = session.get_bind()

    def send() -> None:
        try:
            enqueue_reprocess(celery, job_id)
        except Exception as exc:
            log.exception("could not enqueue reprocess job %s", job_id)
            with Session(bind) as fresh:
                fresh.execute(
                    update(ReprocessJob)
                    .where(ReprocessJob.id == job_id)
                    .values(
                        status=JobStatus.FAILED.value,
                        error_code="queue_unavailable",
                        completed_at=utcnow(),
                        enqueued_at=None,
                    )
                )
                fresh.commit()
            raise ServiceUnavailable("the job queue is unavailable; try again shortly") from exc

    enqueue_after_commit(session, send)


def queue_bulk_retry(
    session: Session,
    celery: Celery,
    filters: JobFilters,
    *,
    dry_run: bool,
    requested_by: uuid.UUID | None,
    idempotency_key: str | None = None,
) -> tuple[ReprocessJob, bool]:
    """Record a bulk retry, commit, and send it to the reprocess queue; True when a replay."""
    fingerprint = _fingerprint(filters, dry_run)
    if idempotency_key:
        existing = session.scalar(
            select(ReprocessJob).where(
                ReprocessJob.requested_by == requested_by,
                ReprocessJob.idempotency_key == idempotency_key,
            )
        )
        if existing is not None:
            if existing.request_hash != fingerprint:
                raise IdempotencyKeyReused("this Idempotency-Key was used with other filters")
            return existing, True
    job = ReprocessJob(
        operation=BULK_RETRY,
        filters=filters.as_dict(),
        dry_run=dry_run,
        requested_by=requested_by,
        idempotency_key=idempotency_key,
        request_hash=fingerprint,
        enqueued_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(job)
    except IntegrityError:
        return queue_bulk_retry(
            session, celery, filters, dry_run=dry_run, requested_by=requested_by,
            idempotency_key=idempotency_key,
        )  # fmt: skip
    session.flush()
    send_after_commit(session, celery, job.id)
    return job, False


def get_reprocess_job(session: Session, job_id: uuid.UUID) -> ReprocessJob:
    """The reprocess job with this id, or NotFound."""
    job = session.get(ReprocessJob, job_id)
    if job is None:
        raise NotFound(f"reprocess job {job_id} not found")
    return job


def run_bulk_retry(
    session: Session,
    job: ReprocessJob,
    attempt: int,
    on_requeued: Callable[[FoundJob], None],
    still_ours: Callable[[], bool],
    checkpoint: Callable[[], None],
) -> None:
    """Retry every job the filters match (or only count them in a dry run), with progress.

    After each batch's progress is written, `checkpoint` is called: the task commits there.
    """
    filters = JobFilters.from_dict(job.filters)
    matched = requeued = skipped = 0
    for found in iter_matching(session, filters):
        matched += 1
        if found.job.status not in RETRYABLE:
            skipped += 1
        elif not job.dry_run:
            if _retry_one(session, found, on_requeued):
                requeued += 1
            else:
                skipped += 1
        if matched % PROGRESS_EVERY == 0:
            if not still_ours():
                session.rollback()
                return
            _progress(session, job.id, attempt, matched, requeued, skipped)
            checkpoint()
    finish_attempt(
        session,
        JobKind.REPROCESS,
        job.id,
        attempt,
        JobStatus.COMPLETED,
        matched=matched,
        requeued=requeued,
        skipped=skipped,
    )


def _retry_one(session: Session, found: FoundJob, on_requeued: Callable[[FoundJob], None]) -> bool:
    """Retry one job; False, with the job left as it was, if its stream could not restart."""
    try:
        with session.begin_nested():
            retry_job(session, found.job.id)
            on_requeued(found)
    except RedisError as exc:
        log.warning("job %s not retried: its stream could not restart (%s)", found.job.id, exc)
        return False
    return True


def _progress(
    session: Session, job_id: uuid.UUID, attempt: int, matched: int, requeued: int, skipped: int
) -> None:
    session.execute(
        fenced_update(ReprocessJob, job_id, attempt).values(
            matched=matched, requeued=requeued, skipped=skipped
        )
    )


def reprocess_body(job: ReprocessJob) -> dict[str, Any]:
    """The public view of a reprocess job."""
    return {
        "id": str(job.id),
        "object": "reprocess.job",
        "operation": job.operation,
        "status": job.status,
        "filters": job.filters,
        "dry_run": job.dry_run,
        "matched": job.matched,
        "requeued": job.requeued,
        "skipped": job.skipped,
        "would_requeue": job.matched - job.skipped if job.dry_run else None,
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
        "attempts": job.attempts,
        "requested_by": str(job.requested_by) if job.requested_by else None,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "completed_at": job.completed_at.isoformat() if job.completed_at else None,
    }
