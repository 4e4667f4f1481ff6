"""Work that waits for the unit of work to commit: sending a job's id once its row is durable.

Data functions register it and never commit; the boundary (a view, a task, `session_scope`)
commits with `commit`, which then raises what a send refused (the send has already done its
compensation: the row marked failed, the reservation given back).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from common.platform.errors import BookchatError

log = logging.getLogger(__name__)

_PENDING = "bookchat.after_commit"
_FAILED = "bookchat.after_commit_failed"


@dataclass
class _Pending:
    send: Callable[[], None]
    on_rollback: Callable[[], None] | None


def enqueue_after_commit(
    session: Session, send: Callable[[], None], on_rollback: Callable[[], None] | None = None
) -> None:
    """Run `send` once `session` commits; if it never does, run `on_rollback` instead.

    `send` raises a BookchatError (after its own compensation) when it cannot send; `commit`
    raises it at the boundary.
    """
    # Listened for on the Session class, once: a listener per session cost a submit ~30 us.
    if not event.contains(Session, "after_commit", _run_pending):
        event.listen(Session, "after_commit", _run_pending)
        event.listen(Session, "after_transaction_end", _drop_pending)
    session.info.setdefault(_PENDING, []).append(_Pending(send, on_rollback))


def commit(session: Session) -> None:
    """Commit the unit of work, run what waited for it, and raise the first refusal."""
    if not session.in_transaction() and not session.info.get(_PENDING):
        return  # committed already (a view commits before its response): nothing to begin
    session.commit()
    failures: list[BookchatError] = session.info.pop(_FAILED, [])
    if failures:
        raise failures[0]


def _run_pending(session: Session) -> None:
    if not session.info.get(_PENDING):
        return  # nothing waits (most sessions: the listener is the class's)
    if session.get_nested_transaction() is not None:
        return  # a savepoint was released: the rows are not durable yet
    pending: list[_Pending] = session.info[_PENDING]
    session.info[_PENDING] = []
    for item in pending:
        # A hook must not raise: the session is committed and must stay usable.
        try:
            item.send()
        except BookchatError as exc:
            session.info.setdefault(_FAILED, []).append(exc)
        except Exception:
            log.exception("an after-commit step failed")


def _drop_pending(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None or not session.info.get(_PENDING):
        return  # a savepoint or a subtransaction (the unit of work goes on), or nothing waits
    pending: list[_Pending] = session.info[_PENDING]
    session.info[_PENDING] = []
    for item in pending:  # what is left never committed: nothing is sent
        if item.on_rollback is not None:
            try:
                item.on_rollback()
            except Exception:
                log.exception("an after-rollback step failed")
