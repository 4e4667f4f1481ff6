"""Recording admin actions from views: every action leaves an audit row, whatever its outcome."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from common.audit import Actor, record
from common.db import session_scope
from common.errors import BookchatError, Unauthorized
from common.models import User
from web.problems import request_id
from web.resources import db, resources
from web.security import current_user_id

log = logging.getLogger(__name__)


def current_actor() -> Actor:
    """The signed-in admin, as the audit log names them."""
    user = db().get(User, current_user_id())
    if user is None:
        raise Unauthorized("the account no longer exists")
    return Actor(user.id, user.email)


@contextmanager
def audited(
    action: str, target_kind: str, target_id: str | None, **detail: Any
) -> Iterator[dict[str, Any]]:
    """Run an admin action and record it; the view may add to the yielded detail.

    A success is recorded in the request's own transaction, so the row and the change commit
    together; a refused or failed action is recorded on its own, since the request's
    transaction will be rolled back.
    """
    actor = current_actor()
    try:
        yield detail
    except BookchatError as exc:
        _record_apart(
            actor, action, target_kind, target_id, "refused", {**detail, "error": exc.code}
        )
        raise
    except Exception as exc:
        _record_apart(
            actor, action, target_kind, target_id, "failed", {**detail, "error": type(exc).__name__}
        )
        raise
    record(db(), actor, action, target_kind, target_id, "ok", detail, request_id())


def _record_apart(
    actor: Actor,
    action: str,
    target_kind: str,
    target_id: str | None,
    outcome: str,
    detail: dict[str, Any],
) -> None:
    try:
        with session_scope(resources().sessions) as session:
            record(session, actor, action, target_kind, target_id, outcome, detail, request_id())
    except SQLAlchemyError:
        log.warning("could not audit %s %s on %s", outcome, action, target_id, exc_info=True)
