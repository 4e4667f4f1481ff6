"""The audit log: who did what to which job, document, user or setting, when, and the outcome."""

from __future__ import annotations

import getpass
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.models import AuditEntry


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
