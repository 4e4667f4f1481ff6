"""User accounts: sign-up, login checks, guests and deleting an account (the web issues tokens)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common.accounts.passwords import hash_password, verify_password
from common.platform.errors import EmailTaken, InvalidCredentials, NotFound
from common.platform.models import (
    AnswerFeedback,
    ChatJob,
    Conversation,
    JobAttempt,
    JobKind,
    Role,
    User,
)
from common.platform.settings import Settings

log = logging.getLogger(__name__)


def normalize_email(email: str) -> str:
    """Emails compare case-insensitively."""
    return email.strip().lower()


def login_key(secret: str, email: str) -> str:
    """A keyed hash of the normalized email: login counters name the account, never the address."""
    message = b"bookchat-login\0" + normalize_email(email).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def create_user(
    session: Session, email: str, password: str, name: str | None, role: Role = Role.USER
) -> User:
    """Register a user with this role (a user unless the caller decided otherwise)."""
    email = normalize_email(email)
    # Hashing comes first either way, so a taken address answers no faster than a free one.
    user = User(email=email, password_hash=hash_password(password), name=name, role=role.value)
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        # Never name the address: the answer must not confirm who has an account.
        raise EmailTaken("an account cannot be created with these details") from exc
    return user


def signup_role(settings: Settings, email: str) -> Role:
    """The role of a new sign-up: admin for ADMIN_EMAILS in development only.

    Nobody verifies that the address belongs to whoever signs up with it, so elsewhere admins
    are made with `bookchat create-admin`.
    """
    if normalize_email(email) not in {normalize_email(a) for a in settings.admin_emails}:
        return Role.USER
    if settings.environment != "development":
        log.warning(
            "%s is in ADMIN_EMAILS but signs up as a reader: ADMIN_EMAILS applies only when "
            "ENVIRONMENT=development (use `bookchat create-admin`)",
            email,
        )
        return Role.USER
    log.warning("%s signs up as an admin because it is in ADMIN_EMAILS (development only)", email)
    return Role.ADMIN


def authenticate(session: Session, email: str, password: str) -> User:
    """The user with these credentials, or InvalidCredentials."""
    user = find_user(session, email)
    if not verify_password(user.password_hash if user else None, password) or user is None:
        raise InvalidCredentials()
    return user


def find_user(session: Session, email: str) -> User | None:
    """The user with this email, if there is one."""
    return session.scalar(select(User).where(User.email == normalize_email(email)))


def get_user(session: Session, user_id: uuid.UUID) -> User:
    """The user with this id, or NotFound."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user not found")
    return user


def create_guest(session: Session) -> User:
    """A guest account: no email, no password, role guest."""
    guest = User(role=Role.GUEST.value)
    session.add(guest)
    session.flush()
    return guest


def adopt_guest(session: Session, guest_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Give the guest's conversations and jobs to the user, then delete the guest."""
    guest = session.get(User, guest_id)
    if guest is None or guest.role != Role.GUEST.value or guest_id == user_id:
        return
    session.execute(
        update(Conversation).where(Conversation.user_id == guest_id).values(user_id=user_id)
    )
    session.execute(update(ChatJob).where(ChatJob.user_id == guest_id).values(user_id=user_id))
    # The guest's ratings are the reader's now; deleting the guest would cascade them away.
    session.execute(
        update(AnswerFeedback).where(AnswerFeedback.user_id == guest_id).values(user_id=user_id)
    )
    session.execute(delete(User).where(User.id == guest_id))


def delete_account(session: Session, user_id: uuid.UUID) -> list[uuid.UUID]:
    """Delete the user with their conversations, jobs (cached results too), attempts and ratings.

    Returns the deleted jobs' ids, whose event streams the caller removes from Redis.
    """
    job_ids = list(session.scalars(select(ChatJob.id).where(ChatJob.user_id == user_id)))
    owned = select(ChatJob.id).where(ChatJob.user_id == user_id)
    # Explicit, as for attempts: not every SQLite file enforces the foreign keys' cascade.
    session.execute(
        delete(AnswerFeedback).where(
            (AnswerFeedback.user_id == user_id) | AnswerFeedback.job_id.in_(owned)
        )
    )
    session.execute(
        delete(JobAttempt).where(
            JobAttempt.job_kind == JobKind.CHAT.value, JobAttempt.job_id.in_(owned)
        )
    )
    session.execute(delete(ChatJob).where(ChatJob.user_id == user_id))
    session.execute(delete(Conversation).where(Conversation.user_id == user_id))
    # The profile goes with the row (ON DELETE CASCADE); admins' jobs keep a null requester.
    session.execute(delete(User).where(User.id == user_id))
    return job_ids
