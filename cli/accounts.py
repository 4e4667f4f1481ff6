"""`bookchat create-admin EMAIL`: the deliberate way to make an administrator."""

from __future__ import annotations

import getpass
import uuid
from typing import TextIO

from cli.operator import Operator, plain_errors
from common.accounts.account_facts import account_changed
from common.accounts.schemas import SignupRequest
from common.accounts.users import create_user, find_user, get_user, normalize_email
from common.platform.db import session_scope
from common.platform.errors import InvalidInput
from common.platform.models import Role
from common.platform.settings import Settings

FIELD_NAMES = {"email": "EMAIL", "password": "password", "name": "--name"}


def create_admin(settings: Settings, email: str, name: str | None, stdin: TextIO) -> int:
    """Promote the account with this email, or create it as an admin with a password."""
    with plain_errors(FIELD_NAMES):
        op = Operator.open(settings)
        with session_scope(op.sessions) as session:
            existing = find_user(session, email)
            user_id = existing.id if existing else None
        if user_id is not None:
            return _promote(op, user_id)
        request = SignupRequest(email=email, password=read_password(stdin), name=name)
        with op.audited("admin.create", "user", None, email=normalize_email(email)) as action:
            user = create_user(
                action.session, request.email, request.password, request.name, Role.ADMIN
            )
            action.note.target_id = str(user.id)
        print(f"created admin {user.email} ({user.id})")
        return 0


def _promote(op: Operator, user_id: uuid.UUID) -> int:
    with op.audited("user.role", "user", str(user_id), role=Role.ADMIN.value) as action:
        user = get_user(action.session, user_id)
        action.detail.update(email=user.email, previous=user.role)
        user.role = Role.ADMIN.value
        account_changed(action.session, op.redis(), [user.id])
    previous = action.detail["previous"]
    if previous == Role.ADMIN.value:
        print(f"{user.email} is already an admin")
    else:
        print(f"{user.email} is now an admin (was {previous}), effective at once")
    return 0


def read_password(stdin: TextIO) -> str:
    """The first line of standard input when piped, else typed twice at a prompt."""
    if not stdin.isatty():
        return stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password for the new admin: ")
    if getpass.getpass("Repeat it: ") != first:
        raise InvalidInput("the passwords do not match")
    return first
