"""User accounts: sign-up and login checks (the web layer issues the tokens)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common.errors import EmailTaken, InvalidCredentials, NotFound
from common.models import Role, User
from common.passwords import hash_password, verify_password


def normalize_email(email: str) -> str:
    """Emails compare case-insensitively."""
    return email.strip().lower()


def create_user(
    session: Session, email: str, password: str, name: str | None, admin_emails: list[str]
) -> User:
    """Register a user; emails listed in ADMIN_EMAILS become admins."""
    email = normalize_email(email)
    admins = {normalize_email(a) for a in admin_emails}
    user = User(
        email=email,
        password_hash=hash_password(password),
        name=name,
        role=Role.ADMIN.value if email in admins else Role.READER.value,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise EmailTaken(f"an account for {email} already exists") from exc
    return user


def authenticate(session: Session, email: str, password: str) -> User:
    """The user with these credentials, or InvalidCredentials."""
    user = session.scalar(select(User).where(User.email == normalize_email(email)))
    if not verify_password(user.password_hash if user else None, password) or user is None:
        raise InvalidCredentials()
    return user


def get_user(session: Session, user_id: uuid.UUID) -> User:
    """The user with this id, or NotFound."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user not found")
    return user
