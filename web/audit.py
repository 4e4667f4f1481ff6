"""Recording admin actions from views: every action leaves an audit row, whatever its outcome."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from common.admin.audit import Actor, AuditNote
from common.admin.audit import audited as record_audited
from common.platform.errors import Unauthorized
from common.platform.models import User
from web.problems import request_id
from web.resources import db, resources
from web.security import current_user_id


def current_actor() -> Actor:
    """The signed-in admin, as the audit log names them."""
    user = db().get(User, current_user_id())
    if user is None:
        raise Unauthorized("the account no longer exists")
    return Actor(user.id, user.email or str(user.id))


@contextmanager
def audited(
    action: str, target_kind: str, target_id: str | None, **detail: Any
) -> Iterator[AuditNote]:
    """Run an admin action and record it (common.admin.audit.audited); the view fills the note."""
    note = AuditNote(target_id, detail)
    with record_audited(
        db(), resources().sessions, current_actor(), action, target_kind, note, request_id()
    ) as filled:
        yield filled
