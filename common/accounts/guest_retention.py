"""Guests are for trying the chat: after GUEST_RETENTION_DAYS they go, with everything they made.

A guest's token lasts GUEST_TOKEN_MINUTES (an hour) and cannot be refreshed, so an old guest
row is never used again; signing up adopts a guest's conversations before this runs. The worker's
watchdog calls `purge_old_guests` now and then (workers/watchdog.py). Quota counters are not
rows: they stay in Redis until their day is over.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from common.platform.models import (
    AnswerFeedback,
    ChatJob,
    Conversation,
    JobAttempt,
    JobKind,
    ReaderProfile,
    Role,
    User,
)

BATCH = 500


def purge_old_guests(session: Session, now: datetime, retention_days: int) -> list[uuid.UUID]:
    """Delete up to BATCH guests created before the retention period, and their data.

    Conversations, chat and chapter jobs with their attempts and ratings, and profiles go with
    them.
    Returns the deleted guests' ids; the caller commits (and calls again while it gets a batch).
    """
    cutoff = now - timedelta(days=retention_days)
    guests = list(
        session.scalars(
            select(User.id)
            .where(User.role == Role.GUEST.value, User.created_at < cutoff)
            .order_by(User.created_at)
            .limit(BATCH)
        )
    )
    if not guests:
        return []
    jobs = select(ChatJob.id).where(ChatJob.user_id.in_(guests))
    session.execute(
        delete(AnswerFeedback).where(
            AnswerFeedback.user_id.in_(guests) | AnswerFeedback.job_id.in_(jobs)
        )
    )
    session.execute(
        delete(JobAttempt).where(
            JobAttempt.job_kind == JobKind.CHAT.value, JobAttempt.job_id.in_(jobs)
        )
    )
    session.execute(delete(ChatJob).where(ChatJob.user_id.in_(guests)))
    session.execute(delete(Conversation).where(Conversation.user_id.in_(guests)))
    session.execute(delete(ReaderProfile).where(ReaderProfile.user_id.in_(guests)))
    session.execute(delete(User).where(User.id.in_(guests)))
    return guests
