"""Readers' ratings of answers: one per reader and job, replaced when they rate again."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common.jobs.chat_jobs import get_chat_job
from common.jobs.schemas import FeedbackIn
from common.platform.errors import JobNotRateable, NotFound
from common.platform.models import AnswerFeedback, ChatJob, JobStatus, utcnow

RATEABLE = (JobStatus.COMPLETED.value, JobStatus.INCOMPLETE.value)
_FEEDBACK = cast(Table, AnswerFeedback.__table__)


@functools.cache
def _insert_statement(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (job_id, user_id) DO NOTHING RETURNING id, built once."""
    if dialect == "postgresql":
        statement: Any = postgresql.insert(_FEEDBACK)
    elif dialect == "sqlite":
        statement = sqlite.insert(_FEEDBACK)
    else:  # pragma: no cover - bookchat supports SQLite and PostgreSQL
        raise NotImplementedError(dialect)
    return statement.on_conflict_do_nothing(index_elements=["job_id", "user_id"]).returning(
        _FEEDBACK.c.id
    )


def rateable_job(session: Session, user_id: uuid.UUID, job_id: uuid.UUID) -> ChatJob:
    """The reader's finished chat answer; NotFound for another's job, JobNotRateable if none."""
    job = get_chat_job(session, user_id, job_id)
    if job.task != "chat" or job.status not in RATEABLE:
        raise JobNotRateable(f"chat job {job_id} is {job.status}: only a finished answer is rated")
    return job


def rate_answer(
    session: Session, user_id: uuid.UUID, job_id: uuid.UUID, rating: FeedbackIn
) -> tuple[AnswerFeedback, bool]:
    """Record (or replace) the reader's rating of their answer; True when it is their first.

    Two first ratings racing do not fail: the unique (job, reader) index lets one insert and
    the other replaces it, without a savepoint.
    """
    rateable_job(session, user_id, job_id)
    now = utcnow()
    values = {"rating": rating.rating, "reason": rating.reason, "comment": rating.comment}
    statement = _insert_statement(session.get_bind().dialect.name)
    row = {"job_id": job_id, "user_id": user_id, "created_at": now, "updated_at": now}
    try:
        created = session.execute(statement, {**row, **values}).first() is not None
    except IntegrityError as exc:  # the job (or the reader) was deleted since it was read
        raise NotFound(f"chat job {job_id} not found") from exc
    if not created:
        session.execute(
            update(AnswerFeedback)
            .where(AnswerFeedback.job_id == job_id, AnswerFeedback.user_id == user_id)
            .values(**values, updated_at=now)
        )
    feedback = find_feedback(session, user_id, job_id)
    assert feedback is not None  # written just above, in this transaction
    session.refresh(feedback)
    return feedback, created


def withdraw_feedback(session: Session, user_id: uuid.UUID, job_id: uuid.UUID) -> bool:
    """Remove the reader's rating of their job; False when there was none."""
    get_chat_job(session, user_id, job_id)
    result: Any = session.execute(
        delete(AnswerFeedback).where(
            AnswerFeedback.job_id == job_id, AnswerFeedback.user_id == user_id
        )
    )
    return bool(result.rowcount)


def find_feedback(session: Session, user_id: uuid.UUID, job_id: uuid.UUID) -> AnswerFeedback | None:
    """The reader's rating of the job, if any."""
    return session.scalar(
        select(AnswerFeedback).where(
            AnswerFeedback.job_id == job_id, AnswerFeedback.user_id == user_id
        )
    )


def feedback_of_job(session: Session, job: ChatJob) -> AnswerFeedback | None:
    """The owner's rating of a job; no query for a job that cannot have one yet."""
    if job.task != "chat" or job.status not in RATEABLE:
        return None
    return find_feedback(session, job.user_id, job.id)


def feedback_by_job(
    session: Session, user_id: uuid.UUID, job_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, AnswerFeedback]:
    """The reader's ratings of these jobs, by job id (one query)."""
    ids = list(job_ids)
    if not ids:
        return {}
    rows = session.scalars(
        select(AnswerFeedback).where(
            AnswerFeedback.user_id == user_id, AnswerFeedback.job_id.in_(ids)
        )
    )
    return {row.job_id: row for row in rows}


def delete_feedback_of_jobs(session: Session, job_ids: Any) -> None:
    """Delete every rating of these jobs (a list or a subquery of ids), before the jobs go.

    The foreign keys cascade too; deleting explicitly keeps it true on a database that was
    created without them being enforced.
    """
    session.execute(delete(AnswerFeedback).where(AnswerFeedback.job_id.in_(job_ids)))
