"""User accounts: sign-up and login checks (the web layer issues the tokens)."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common.errors import EmailTaken, InvalidCredentials, NotFound
from common.models import Role, User
from common.passwords import hash_password, verify_password
from common.settings import Settings

log = logging.getLogger(__name__)


def normalize_email(email: str) -> str:
    """Emails compare case-insensitively."""
    return email.strip().lower()


def create_user(
    session: Session, email: str, password: str, name: str | None, role: Role = Role.READER
) -> User:
    """Register a user with this role (a reader unless the caller decided otherwise)."""
    email = normalize_email(email)
    user = User(email=email, password_hash=hash_password(password), name=name, role=role.value)
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise EmailTaken(f"an account for {email} already exists") from exc
    return user


def signup_role(settings: Settings, email: str) -> Role:
    """The role of a new sign-up: admin for ADMIN_EMAILS in development only.

    Nobody verifies that the address belongs to whoever signs up with it, so elsewhere admins
    are made with `bookchat create-admin`.
    """
    if normalize_email(email) not in {normalize_email(a) for a in settings.admin_emails}:
        return Role.READER
    if settings.environment != "development":
        log.warning(
            "%s is in ADMIN_EMAILS but signs up as a reader: ADMIN_EMAILS applies only when "
            "ENVIRONMENT=development (use `bookchat create-admin`)",
            email,
        )
        return Role.READER
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
