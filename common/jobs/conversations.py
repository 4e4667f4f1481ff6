"""Conversations: a user's threads of chat jobs, listed newest first, renamed and deleted."""

from __future__ import annotations

import uuid

import redis
from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from common.jobs.events import cancel_key, stream_key
from common.jobs.feedback import delete_feedback_of_jobs
from common.platform.errors import NotFound
from common.platform.models import ChatJob, Conversation, JobAttempt, JobKind

_CANCEL_FLAG_SECONDS = 3600


def list_conversations(
    session: Session, user_id: uuid.UUID, limit: int, after: uuid.UUID | None
) -> tuple[list[Conversation], bool]:
    """A page of the user's conversations, most recently updated first, and whether more exist."""
    query = select(Conversation).where(Conversation.user_id == user_id)
    if after is not None:
        cursor = get_conversation(session, user_id, after)
        query = query.where(
            tuple_(Conversation.updated_at, Conversation.id) < tuple_(cursor.updated_at, cursor.id)
        )
    rows = session.scalars(
        query.order_by(Conversation.updated_at.desc(), Conversation.id.desc()).limit(limit + 1)
    ).all()
    return list(rows[:limit]), len(rows) > limit


def get_conversation(
    session: Session, user_id: uuid.UUID, conversation_id: uuid.UUID
) -> Conversation:
    """The user's conversation, or NotFound."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or conversation.user_id != user_id:
        raise NotFound(f"conversation {conversation_id} not found")
    return conversation


def rename_conversation(
    session: Session, user_id: uuid.UUID, conversation_id: uuid.UUID, title: str
) -> Conversation:
    """Give the user's conversation a new title."""
    conversation = get_conversation(session, user_id, conversation_id)
    conversation.title = title
    session.flush()
    return conversation


def delete_conversation(
    session: Session, user_id: uuid.UUID, conversation_id: uuid.UUID
) -> list[uuid.UUID]:
    """Delete the user's conversation and its jobs; returns the jobs' ids (for their streams)."""
    conversation = get_conversation(session, user_id, conversation_id)
    owned = select(ChatJob.id).where(ChatJob.conversation_id == conversation.id)
    job_ids = list(session.scalars(owned))
    delete_feedback_of_jobs(session, owned)
    session.execute(
        delete(JobAttempt).where(
            JobAttempt.job_kind == JobKind.CHAT.value, JobAttempt.job_id.in_(owned)
        )
    )
    session.execute(delete(ChatJob).where(ChatJob.conversation_id == conversation.id))
    session.execute(delete(Conversation).where(Conversation.id == conversation.id))
    return job_ids


def forget_job_events(client: redis.Redis, job_ids: list[uuid.UUID]) -> None:
    """Remove deleted jobs' event streams, and flag any still running to stop."""
    pipe = client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.delete(stream_key(job_id))
        # A worker mid-answer checks this flag and stops instead of writing to a deleted row.
        pipe.set(cancel_key(job_id), "1", ex=_CANCEL_FLAG_SECONDS)
    pipe.execute()
