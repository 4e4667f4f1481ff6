"""Chat jobs: submission with idempotency, reads, cancellation and the worker's transitions."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from typing import Any

from celery import Celery
from redis import RedisError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common.errors import IdempotencyKeyReused, JobNotCancellable, NotFound, ServiceUnavailable
from common.events import JobEvents
from common.lifecycle import claim_job, finish_attempt
from common.models import ChatJob, Conversation, JobKind, JobStatus, utcnow
from common.queue import enqueue_chat_job
from common.schemas import ChatJobCreate

log = logging.getLogger(__name__)

_ACTIVE = (JobStatus.QUEUED.value, JobStatus.IN_PROGRESS.value)
QUEUE_UNAVAILABLE = "queue_unavailable"


def request_fingerprint(request: ChatJobCreate) -> str:
    """A stable hash of the request body, to tell a replay from a reused key."""
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _conversation_for(session: Session, user_id: uuid.UUID, request: ChatJobCreate) -> Conversation:
    if request.conversation_id is None:
        conversation = Conversation(user_id=user_id, title=request.message[:80])
        session.add(conversation)
        return conversation
    existing = session.get(Conversation, request.conversation_id)
    if existing is None or existing.user_id != user_id:
        raise NotFound(f"conversation {request.conversation_id} not found")
    existing.updated_at = utcnow()
    return existing


def _find_by_key(session: Session, user_id: uuid.UUID, key: str) -> ChatJob | None:
    return session.scalar(
        select(ChatJob).where(ChatJob.user_id == user_id, ChatJob.idempotency_key == key)
    )


def _replay(session: Session, existing: ChatJob, fingerprint: str) -> tuple[ChatJob, bool]:
    if existing.request_hash != fingerprint:
        raise IdempotencyKeyReused("this Idempotency-Key was used with a different request body")
    if existing.error_code == QUEUE_UNAVAILABLE:
        # The first submit answered 503: the same request again is a fresh try, not a replay.
        existing.status = JobStatus.QUEUED.value
        existing.error_code = existing.error_message = None
        existing.completed_at = None
        existing.enqueued_at = existing.queued_at = utcnow()
        session.flush()
        return existing, False
    return existing, True


def submit_chat_job(
    session: Session, user_id: uuid.UUID, request: ChatJobCreate, idempotency_key: str | None
) -> tuple[ChatJob, bool]:
    """Create a queued job (or return the one this key made); True when it is a replay."""
    fingerprint = request_fingerprint(request)
    if idempotency_key:
        existing = _find_by_key(session, user_id, idempotency_key)
        if existing is not None:
            return _replay(session, existing, fingerprint)
    try:
        # A savepoint: losing the race below undoes only this job, not the caller's work.
        with session.begin_nested():
            job = ChatJob(
                user_id=user_id,
                conversation=_conversation_for(session, user_id, request),
                message=request.message,
                selected_text=request.selected_text,
                page_url=request.page_url,
                idempotency_key=idempotency_key,
                request_hash=fingerprint,
                citations=[],
                # Sent right after commit; the watchdog re-sends it if that send is lost.
                enqueued_at=utcnow(),
            )
            session.add(job)
    except IntegrityError:
        # A concurrent request with the same key won the race.
        existing = _find_by_key(session, user_id, idempotency_key or "")
        if existing is None:
            raise
        return _replay(session, existing, fingerprint)
    return job, False


def queue_chat_job(
    session: Session,
    celery: Celery,
    events: JobEvents,
    user_id: uuid.UUID,
    request: ChatJobCreate,
    idempotency_key: str | None = None,
) -> tuple[ChatJob, bool]:
    """Submit, commit, then send the job to the chat queue; True when it is a replay.

    If the broker cannot take it, the row is marked failed and ServiceUnavailable is raised.
    """
    job, replayed = submit_chat_job(session, user_id, request, idempotency_key)
    session.commit()
    if replayed:
        return job, True
    try:
        enqueue_chat_job(celery, job.id)
    except Exception as exc:
        log.exception("could not enqueue chat job %s", job.id)
        fail_queued_chat_job(session, job.id, QUEUE_UNAVAILABLE, "the job could not be queued")
        session.commit()
        raise ServiceUnavailable("the job queue is unavailable; try again shortly") from exc
    try:
        events.publish(job.id, "status", {"status": JobStatus.QUEUED.value})
    except RedisError:
        log.warning("could not publish the queued event of %s", job.id, exc_info=True)
    return job, False


def get_chat_job(session: Session, user_id: uuid.UUID, job_id: uuid.UUID) -> ChatJob:
    """The user's job; someone else's job is indistinguishable from a missing one."""
    job = session.get(ChatJob, job_id)
    if job is None or job.user_id != user_id:
        raise NotFound(f"chat job {job_id} not found")
    return job


def cancel_chat_job(session: Session, user_id: uuid.UUID, job_id: uuid.UUID) -> ChatJob:
    """Cancel a queued or running job; cancelling a cancelled job is a no-op."""
    job = get_chat_job(session, user_id, job_id)
    if job.status == JobStatus.CANCELLED.value:
        return job
    result: Any = session.execute(
        update(ChatJob)
        .where(ChatJob.id == job_id, ChatJob.status.in_(_ACTIVE))
        .values(status=JobStatus.CANCELLED.value, completed_at=utcnow())
    )
    session.refresh(job)
    if result.rowcount == 0 and job.status != JobStatus.CANCELLED.value:
        raise JobNotCancellable(f"chat job {job_id} is already {job.status}")
    return job


def claim_chat_job(
    session: Session, job_id: uuid.UUID, lease_seconds: float, worker: str = "local"
) -> ChatJob | None:
    """Take a queued, due job as a new attempt; None if it is not ours to run."""
    job = claim_job(session, JobKind.CHAT, job_id, worker, lease_seconds)
    assert job is None or isinstance(job, ChatJob)
    return job


def complete_chat_job(
    session: Session,
    job_id: uuid.UUID,
    answer: str,
    citations: list[dict[str, Any]],
    model: str,
    usage: dict[str, Any] | None,
    metrics: dict[str, Any] | None = None,
    *,
    attempt: int,
) -> bool:
    """Mark the attempt's job completed with its answer; False if it is no longer that attempt's."""
    return finish_attempt(
        session,
        JobKind.CHAT,
        job_id,
        attempt,
        JobStatus.COMPLETED,
        answer=answer,
        citations=citations,
        model=model,
        usage=usage,
        metrics=metrics,
        error_code=None,
        error_message=None,
    )


def fail_chat_job(
    session: Session,
    job_id: uuid.UUID,
    code: str,
    message: str,
    metrics: dict[str, Any] | None = None,
    *,
    attempt: int,
    trace: str | None = None,
) -> bool:
    """Mark the attempt's job failed with an error the user sees (`trace` is for operators)."""
    extra = {"metrics": metrics} if metrics is not None else {}
    return finish_attempt(
        session,
        JobKind.CHAT,
        job_id,
        attempt,
        JobStatus.FAILED,
        trace,
        error_code=code,
        error_message=message,
        **extra,
    )


def fail_queued_chat_job(session: Session, job_id: uuid.UUID, code: str, message: str) -> None:
    """Mark a job that never reached a worker failed."""
    session.execute(
        update(ChatJob)
        .where(ChatJob.id == job_id, ChatJob.status == JobStatus.QUEUED.value)
        .values(
            status=JobStatus.FAILED.value,
            error_code=code,
            error_message=message,
            completed_at=utcnow(),
            enqueued_at=None,
        )
    )


def conversation_history(session: Session, job: ChatJob, turns: int) -> list[tuple[str, str]]:
    """The last completed (question, answer) turns before this job in its conversation."""
    if turns <= 0:
        return []
    rows = session.scalars(
        select(ChatJob)
        .where(
            ChatJob.conversation_id == job.conversation_id,
            ChatJob.created_at < job.created_at,
            ChatJob.status == JobStatus.COMPLETED.value,
        )
        .order_by(ChatJob.created_at.desc())
        .limit(turns)
    ).all()
    return [(row.message, row.answer or "") for row in reversed(rows)]
