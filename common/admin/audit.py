"""The audit log: who did what to which job, document, user or setting, when, and the outcome."""

from __future__ import annotations

import getpass
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from common.admin.schemas import AuditQuery, parse_since
from common.platform.db import session_scope
from common.platform.errors import BookchatError
from common.platform.models import AuditEntry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Actor:
    """Who acts: an admin account, or an operator at the command line."""

    id: uuid.UUID | None
    name: str


def cli_actor() -> Actor:
    """The operator running a `bookchat admin` command (no account: the shell is the login)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Actor(None, f"cli:{user}")


def record(
    session: Session,
    actor: Actor,
    action: str,
    target_kind: str,
    target_id: str | None,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> AuditEntry:
    """Add an audit row (committed with the caller's unit of work)."""
    entry = AuditEntry(
        actor_id=actor.id,
        actor=actor.name,
        action=action,
        target_kind=target_kind,
        target_id=target_id,
        outcome=outcome,
        detail=detail or {},
        request_id=request_id,
    )
    session.add(entry)
    session.flush()
    return entry


@dataclass
class AuditNote:
    """What the audit row of an action in progress will say; the action may fill it in."""

    target_id: str | None
    detail: dict[str, Any] = field(default_factory=dict)


@contextmanager
def audited(
    session: Session,
    sessions: sessionmaker[Session],
    actor: Actor,
    action: str,
    target_kind: str,
    note: AuditNote,
    request_id: str | None = None,
) -> Iterator[AuditNote]:
    """Run an action and record it in the audit log, whatever its outcome.

    A success is recorded in `session`, so the row commits with the change; a refused or
    failed action is recorded in a unit of work of its own, since the caller's transaction
    will be rolled back.
    """
    try:
        yield note
    except Exception as exc:
        outcome = "refused" if isinstance(exc, BookchatError) else "failed"
        code = exc.code if isinstance(exc, BookchatError) else type(exc).__name__
        detail = {**note.detail, "error": code}
        try:
            with session_scope(sessions) as apart:
                record(
                    apart, actor, action, target_kind, note.target_id, outcome, detail, request_id
                )
        except SQLAlchemyError:
            log.warning(
                "could not audit %s %s on %s", outcome, action, note.target_id, exc_info=True
            )
        raise
    record(session, actor, action, target_kind, note.target_id, "ok", note.detail, request_id)


def list_audit(
    session: Session,
    *,
    limit: int,
    after: int | None = None,
    action: str | None = None,
    actor: str | None = None,
    target_id: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
) -> tuple[list[AuditEntry], bool]:
    """Entries newest first, after the entry with id `after`; True when there are more."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
    if after is not None:
        query = query.where(AuditEntry.id < after)
    if action:
        query = query.where(AuditEntry.action == action)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if target_id:
        query = query.where(AuditEntry.target_id == target_id)
    if outcome:
        query = query.where(AuditEntry.outcome == outcome)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    rows = list(session.scalars(query))
    return rows[:limit], len(rows) > limit


def audit_page(session: Session, query: AuditQuery) -> tuple[list[AuditEntry], bool]:
    """`list_audit` with the filters of an AuditQuery (the API's and the CLI's)."""
    return list_audit(
        session,
        limit=query.limit,
        after=query.after,
        action=query.action,
        actor=query.actor,
        target_id=query.target_id,
        outcome=query.outcome,
        since=parse_since(query.since) if query.since else None,
    )
