"""Guests past their retention go with all their data; recent guests and accounts stay."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from common.accounts.guest_retention import purge_old_guests
from common.platform.models import (
    ChatJob,
    Conversation,
    JobAttempt,
    JobKind,
    ReaderProfile,
    Role,
    User,
    utcnow,
)

NOW = utcnow()


def _user(session: Session, role: Role, age: timedelta) -> uuid.UUID:
    email = None if role == Role.GUEST else f"kept-{uuid.uuid4().hex[:10]}@example.com"
    user = User(role=role.value, email=email, created_at=NOW - age)
    session.add(user)
    session.flush()
    conversation = Conversation(user_id=user.id, title="What is a node?")
    session.add(conversation)
    session.flush()
    for task, conversation_id in (("chat", conversation.id), ("translate", None)):
        job = ChatJob(
            user_id=user.id,
            conversation_id=conversation_id,
            task=task,
            message="What is a node?",
            request_hash="0" * 64,
            attempts=1,
        )
        session.add(job)
        session.flush()
        session.add(JobAttempt(job_kind=JobKind.CHAT.value, job_id=job.id, number=1))
    session.add(ReaderProfile(user_id=user.id))
    session.flush()
    return user.id


def _rows(session: Session, user_id: uuid.UUID) -> dict[str, int]:
    jobs = select(ChatJob.id).where(ChatJob.user_id == user_id)

    def count(statement: Select[int]) -> int:
        return session.scalar(statement) or 0

    return {
        "users": count(select(func.count()).where(User.id == user_id)),
        "conversations": count(select(func.count()).where(Conversation.user_id == user_id)),
        "jobs": count(select(func.count()).where(ChatJob.user_id == user_id)),
        "attempts": count(select(func.count()).where(JobAttempt.job_id.in_(jobs))),
        "profiles": count(select(func.count()).where(ReaderProfile.user_id == user_id)),
    }


ALL = {"users": 1, "conversations": 1, "jobs": 2, "attempts": 2, "profiles": 1}
NONE = dict.fromkeys(ALL, 0)


def test_old_guests_go_with_their_data_and_the_rest_stays(session: Session) -> None:
    old_guest = _user(session, Role.GUEST, timedelta(days=8))
    recent_guest = _user(session, Role.GUEST, timedelta(days=6))
    old_account = _user(session, Role.USER, timedelta(days=400))
    old_admin = _user(session, Role.ADMIN, timedelta(days=400))

    purged = purge_old_guests(session, NOW, retention_days=7)
    session.flush()
    session.expire_all()

    assert purged == [old_guest]
    assert _rows(session, old_guest) == NONE
    for kept in (recent_guest, old_account, old_admin):
        assert _rows(session, kept) == ALL
    assert purge_old_guests(session, NOW, retention_days=7) == []


def test_the_retention_period_is_the_setting(session: Session) -> None:
    guest = _user(session, Role.GUEST, timedelta(days=2))

    assert purge_old_guests(session, NOW, retention_days=3) == []
    assert purge_old_guests(session, NOW, retention_days=1) == [guest]
