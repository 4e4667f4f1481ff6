"""Chat jobs: submission with idempotency, reads, cancellation and the worker's transitions."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import uuid
from datetime import datetime
from typing import Any, cast

from celery import Celery
from redis import RedisError
from sqlalchemy import Connection, Engine, Table, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased, make_transient_to_detached

from common.accounts.profiles import ReaderProfileIn, profile_input
from common.accounts.token_reservations import Reservation
from common.jobs.events import JobEvents
from common.jobs.lifecycle import claim_job, finish_attempt
from common.jobs.queue import chat_publisher, enqueue_chat_job
from common.jobs.repeat_lane import repeat_hint_key
from common.jobs.schemas import ChatJobCreate
from common.platform.after_commit import enqueue_after_commit
from common.platform.errors import (
    IdempotencyKeyReused,
    JobNotCancellable,
    NotFound,
    ServiceUnavailable,
)
from common.platform.models import (
    ChatJob,
    Conversation,
    JobKind,
    JobStatus,
    ReaderProfile,
    User,
    utcnow,
)

log = logging.getLogger(__name__)

_ACTIVE = (JobStatus.QUEUED.value, JobStatus.IN_PROGRESS.value)
_ANSWERED = (JobStatus.COMPLETED.value, JobStatus.INCOMPLETE.value)
QUEUE_UNAVAILABLE = "queue_unavailable"
_JOBS = cast(Table, ChatJob.__table__)
_CONVERSATIONS = cast(Table, Conversation.__table__)
# Columns a new job leaves empty: set on the returned object so reading them loads nothing.
_UNSET_ON_SUBMIT = dict.fromkeys(
    (
        "answer",
        "model",
        "usage",
        "error_code",
        "error_message",
        "metrics",
        "worker",
        "lease_expires_at",
        "due_at",
        "queued_at",
        "started_at",
        "completed_at",
        "profile_applied",
        "sources",
        "incomplete_reason",
        "language",
        "cache_key",
        "label",
        "top_similarity",
        "cached_from_job_id",
    )
)


def request_fingerprint(request: ChatJobCreate) -> str:
    """A stable hash of the request body, to tell a replay from a reused key."""
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


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


@functools.cache
def _insert_job_statement(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (user_id, idempotency_key) DO NOTHING RETURNING id, built once."""
    table = _JOBS
    if dialect == "postgresql":
        statement: Any = postgresql.insert(table)
    elif dialect == "sqlite":
        statement = sqlite.insert(table)
    else:  # pragma: no cover - bookchat supports SQLite and PostgreSQL
        raise NotImplementedError(dialect)
    conflict = statement.on_conflict_do_nothing(index_elements=["user_id", "idempotency_key"])
    return conflict.returning(table.c.id)


_INSERT_CONVERSATION = insert(_CONVERSATIONS)
_TOUCH_CONVERSATION = (
    update(_CONVERSATIONS)
    .where(
        _CONVERSATIONS.c.id == bindparam("conversation_id"),
        _CONVERSATIONS.c.user_id == bindparam("owner_id"),
    )
    .values(updated_at=bindparam("now"))
)


def _insert_job(session: Session, values: dict[str, Any]) -> bool:
    """INSERT the job unless its (user, key) exists; False when another request holds the key.

    ON CONFLICT DO NOTHING turns the idempotency race into a result instead of an error, so
    no savepoint is needed to keep the caller's other work: under PostgreSQL the insert waits
    for a concurrent transaction holding the key, then inserts (it rolled back) or does nothing
    (it committed, and the caller can read its row). A row comes back only when inserted
    (psycopg's rowcount is not 0 for DO NOTHING).
    """
    statement = _insert_job_statement(session.get_bind().dialect.name)
    return session.execute(statement, values).first() is not None


def _use_conversation(
    session: Session, user_id: uuid.UUID, request: ChatJobCreate, now: datetime
) -> tuple[uuid.UUID, bool]:
    """The conversation's id (a new one is inserted) and whether it was created here."""
    if request.conversation_id is None:
        conversation_id = uuid.uuid4()
        row = {"id": conversation_id, "user_id": user_id, "title": request.message[:80]}
        session.execute(_INSERT_CONVERSATION, {**row, "created_at": now, "updated_at": now})
        return conversation_id, True
    # One UPDATE checks the owner and touches the conversation (someone else's is "not found").
    touched: Any = session.execute(
        _TOUCH_CONVERSATION,
        {"conversation_id": request.conversation_id, "owner_id": user_id, "now": now},
    )
    if not touched.rowcount:
        raise NotFound(f"conversation {request.conversation_id} not found")
    return request.conversation_id, False


def submit_chat_job(
    session: Session,
    user_id: uuid.UUID,
    request: ChatJobCreate,
    idempotency_key: str | None,
    job_id: uuid.UUID | None = None,
) -> tuple[ChatJob, bool]:
    """Create a queued job (or return the one this key made); True when it is a replay.

    The common case is two INSERTs (conversation, job) and no SELECT: the key is checked by
    the job's unique index, and only a request whose key exists reads the existing row.
    """
    fingerprint = request_fingerprint(request)
    now = utcnow()
    conversation_id, created = _use_conversation(session, user_id, request, now)
    values: dict[str, Any] = {
        "id": job_id or uuid.uuid4(),
        "user_id": user_id,
        "conversation_id": conversation_id,
        "status": JobStatus.QUEUED.value,
        "task": "chat",
        "message": request.message,
        "selected_text": request.selected_text,
        "page_url": request.page_url,
        "idempotency_key": idempotency_key,
        "request_hash": fingerprint,
        "citations": [],
        "attempts": 0,
        "waits": 0,
        # Sent right after commit; the watchdog re-sends it if that send is lost.
        "enqueued_at": now,
        "created_at": now,
    }
    if not _insert_job(session, values):
        # The key exists (an earlier request, or a concurrent one that won the race).
        if created:
            session.execute(delete(_CONVERSATIONS).where(Conversation.id == conversation_id))
        existing = _find_by_key(session, user_id, idempotency_key or "")
        if existing is None:  # pragma: no cover - a conflict names an existing row
            raise RuntimeError("idempotency conflict without a row")
        return _replay(session, existing, fingerprint)
    # The row is written: hand the caller a persistent object without reading it back.
    job = ChatJob(**values, **_UNSET_ON_SUBMIT)
    make_transient_to_detached(job)
    session.add(job)
    return job, False


def queue_chat_job(
    session: Session,
    celery: Celery,
    events: JobEvents,
    user_id: uuid.UUID,
    request: ChatJobCreate,
    idempotency_key: str | None = None,
    reservation: Reservation | None = None,
) -> tuple[ChatJob, bool]:
    """Reserve its tokens and submit; once the caller commits, send it. True: a replay.

    The reservation comes first (429 or 503 when it does not fit, nothing written); a replay,
    a submit that fails or a unit of work rolled back gives it back. If the broker cannot
    take the job, the row is marked failed and `common.platform.after_commit.commit` raises
    ServiceUnavailable.
    """
    job_id = uuid.uuid4()
    if reservation is not None:
        reservation.take(job_id)
    try:
        job, replayed = submit_chat_job(session, user_id, request, idempotency_key, job_id)
    except BaseException:
        if reservation is not None:
            reservation.give_back(job_id)
        raise
    if replayed:
        if reservation is not None:
            reservation.give_back(job_id)
        return job, True
    if reservation is not None and job.id != job_id:
        reservation.move(job_id, job.id)  # a retried submit runs the job its key first made
    # A first turn may be a repeat whose answer is stored: its hint routes it to the fast lane.
    hint = None
    if request.conversation_id is None:
        hint = repeat_hint_key(request.message, request.selected_text, request.page_url)
    send_after_commit(session, celery, events, job.id, reservation, hint)
    return job, False


def send_after_commit(
    session: Session,
    celery: Celery,
    events: JobEvents,
    job_id: uuid.UUID,
    reservation: Reservation | None = None,
    hint_key: str | None = None,
) -> None:
    """Send a job (chat or chapter) to a chat queue once `session` commits, never before.

    A refused send marks the row failed (the watchdog leaves it) and gives the reservation
    back; so does a unit of work that never commits, which sends nothing.
    """
    bind = session.get_bind()

    def give_back() -> None:
        if reservation is not None:
            reservation.give_back(job_id)

    def send() -> None:
        try:
            send_committed_job(bind, celery, events, job_id, hint_key)
        except ServiceUnavailable:
            give_back()
            raise

    enqueue_after_commit(session, send, give_back)


def send_committed_job(
    bind: Engine | Connection,
    celery: Celery,
    events: JobEvents,
    job_id: uuid.UUID,
    hint_key: str | None = None,
) -> None:
    """Enqueue a committed job (chat or chapter) and announce it; on failure mark it failed.

    One round trip when the events live on the broker's Redis (as `bookchat` runs them): the
    `queued` event rides in the send's script. If the broker cannot take the job, the row is
    marked failed (in a unit of work of its own) and ServiceUnavailable is raised.
    """
    queued = events.entry(job_id, "status", {"status": JobStatus.QUEUED.value})
    along = chat_publisher(celery).shares_database(events.client)
    try:
        enqueue_chat_job(celery, job_id, hint_key, queued if along else None)
    except Exception as exc:
        log.exception("could not enqueue job %s", job_id)
        with Session(bind) as session:
            fail_queued_chat_job(session, job_id, QUEUE_UNAVAILABLE, "the job could not be queued")
            session.commit()
        raise ServiceUnavailable("the job queue is unavailable; try again shortly") from exc
    if along:
        return
    try:
        events.publish(job_id, queued.event, {"status": JobStatus.QUEUED.value})
    except RedisError:
        log.warning("could not publish the queued event of %s", job_id, exc_info=True)


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


def runnable_chat_job(session: Session, job_id: uuid.UUID) -> ChatJob | None:
    """The job if a claim could take it now (queued and due), read without writing anything."""
    job = session.get(ChatJob, job_id)
    if job is None or job.status != JobStatus.QUEUED.value:
        return None
    if job.due_at is not None and job.due_at > utcnow():
        return None
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
    sources: list[dict[str, Any]] | None = None,
    incomplete_reason: str | None = None,
    columns: dict[str, Any] | None = None,
) -> bool:
    """Mark the attempt's job finished with its answer; False if it is no longer that attempt's.

    With an `incomplete_reason` (the model stopped early) the job ends `incomplete`, its text
    kept; otherwise `completed`. `columns`: more of the job's columns, set by the same UPDATE.
    """
    status = JobStatus.INCOMPLETE if incomplete_reason else JobStatus.COMPLETED
    return finish_attempt(
        session,
        JobKind.CHAT,
        job_id,
        attempt,
        status,
        answer=answer,
        citations=citations,
        sources=sources or [],
        incomplete_reason=incomplete_reason,
        model=model,
        usage=usage,
        metrics=metrics,
        error_code=None,
        error_message=None,
        **(columns or {}),
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


# Built once: an aliased statement costs more to build and key for the cache than to run.
_PRIOR = aliased(ChatJob, name="prior")
_JOB_CONTEXT = (
    select(User, ReaderProfile, _PRIOR.message, _PRIOR.answer)
    .outerjoin(ReaderProfile, ReaderProfile.user_id == User.id)
    .outerjoin(
        _PRIOR,
        (_PRIOR.conversation_id == bindparam("conversation_id"))
        & (_PRIOR.created_at < bindparam("created_at"))
        & _PRIOR.status.in_(_ANSWERED),
    )
    .where(User.id == bindparam("user_id"))
    .order_by(_PRIOR.created_at.desc())
    .limit(bindparam("turns"))
)


def job_context(
    session: Session, job: ChatJob, turns: int
) -> tuple[User | None, ReaderProfileIn | None, list[tuple[str, str]]]:
    """The job's account, its saved profile and the last `turns` answered (question, answer)
    turns before it in its conversation, oldest first, in one query: a worker reads all three
    before every answer.

    An `incomplete` answer counts: the reader saw its text. One row per earlier turn, each
    carrying the account; a first turn is one row.
    """
    # Chapter jobs have no conversation: a NULL id matches no earlier turn.
    params = {
        "user_id": job.user_id,
        "conversation_id": job.conversation_id if turns > 0 else None,
        "created_at": job.created_at,
        "turns": max(turns, 1),
    }
    rows = session.execute(_JOB_CONTEXT, params).all()
    if not rows:
        return None, None, []
    user, profile = rows[0][0], rows[0][1]
    history = [(row[2], row[3] or "") for row in reversed(rows) if row[2] is not None]
    return user, profile_input(profile) if profile is not None else None, history
