"""Conversations: a user's threads of chat jobs, listed newest first."""

from __future__ import annotations

import uuid

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from common.errors import NotFound
from common.models import Conversation


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
