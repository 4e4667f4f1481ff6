"""What an operator's command needs: the database, Redis on demand, and an audit of each action.

Operator commands use the running bookchat's database and Redis and never start either; what
can go wrong at a shell becomes a one-line message and an exit code (1: refused or not found,
2: bookchat is not running), never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from celery import Celery
from pydantic import ValidationError
from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from cli.client import NotRunning, connect, running_settings
from common.admin.audit import Actor, AuditNote, cli_actor
from common.admin.audit import audited as record_audited
from common.jobs.events import JobEvents
from common.jobs.queue import make_celery
from common.platform.db import is_unavailable, make_engine, make_session_factory, session_scope
from common.platform.errors import InvalidInput, ServiceUnavailable
from common.platform.models import User
from common.platform.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Action:
    """One audited action in progress: its unit of work, and what the audit row will say."""

    session: Session
    note: AuditNote

    @property
    def detail(self) -> dict[str, Any]:
        """Details for the audit row; the action may add to them."""
        return self.note.detail


@dataclass
class Operator:
    """The operator at the shell: settings, database sessions, and Redis once a command needs it."""

    settings: Settings
    sessions: sessionmaker[Session]
    actor: Actor = field(default_factory=cli_actor)
    _redis: redis.Redis | None = None

    @classmethod
    def open(cls, settings: Settings) -> Operator:
        """Connect to bookchat's database (exit 2 when it is missing or unreachable)."""
        return cls(settings, open_database(settings))

    def redis(self) -> redis.Redis:
        """Redis of the running bookchat (exit 2 when it is not running)."""
        if self._redis is None:
            self._redis = connect(self.settings)
        return self._redis

    def celery(self) -> Celery:
        """A Celery client sending to the running bookchat's broker (never one of its own)."""
        return make_celery(running_settings(self.settings))

    def events(self) -> JobEvents:
        """Job event streams, as the API and the workers write them."""
        return JobEvents(self.redis(), self.settings.event_retention_seconds)

    @contextmanager
    def audited(
        self, action: str, target_kind: str, target_id: str | None, **detail: Any
    ) -> Iterator[Action]:
        """Run an action in one unit of work and record it in the audit log, whatever its outcome.

        A success is recorded in the action's own transaction; a refused or failed action is
        recorded on its own, since the action's transaction is rolled back.
        """
        note = AuditNote(target_id, detail)
        with (
            session_scope(self.sessions) as session,
            record_audited(session, self.sessions, self.actor, action, target_kind, note),
        ):
            yield Action(session, note)


def open_database(settings: Settings) -> sessionmaker[Session]:
    """Sessions on bookchat's database, once it is known to exist and to hold bookchat's tables."""
    url = make_url(settings.sqlalchemy_url)
    sqlite_file = url.database if url.get_backend_name() == "sqlite" else None
    # Opening a missing SQLite file would create an empty one.
    if sqlite_file and sqlite_file != ":memory:" and not Path(sqlite_file).exists():
        raise NotRunning(
            f"there is no bookchat database at {sqlite_file}: start bookchat with "
            "`make dev` (or set DATABASE_URL)"
        )
    engine = make_engine(settings)
    try:
        with engine.connect() as connection:
            migrated = inspect(connection).has_table(User.__tablename__)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise NotRunning(f"cannot reach the database at {_safe(settings)}: {_reason(exc)}") from exc
    if not migrated:
        raise NotRunning(f"the database at {_safe(settings)} has no tables: run `bookchat migrate`")
    return make_session_factory(engine)


@contextmanager
def plain_errors(names: dict[str, str] | None = None) -> Iterator[None]:
    """Turn what can go wrong at a shell into bookchat's errors (exit 1) or NotRunning (exit 2).

    `names` maps a field to the option or argument the operator typed (`error_code` to
    `--error`); fields not listed are shown as `--field-name`.
    """
    try:
        yield
    except ValidationError as exc:
        raise InvalidInput(describe(exc, names or {})) from exc
    except ServiceUnavailable as exc:
        raise NotRunning(exc.detail) from exc
    except redis.RedisError as exc:
        raise NotRunning(f"cannot reach Redis: {exc}") from exc
    except SQLAlchemyError as exc:
        if not is_unavailable(exc):
            raise
        raise NotRunning(f"cannot reach the database: {_reason(exc)}") from exc


def describe(exc: ValidationError, names: dict[str, str]) -> str:
    """A validation error as one line naming the options at fault."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        shown = names.get(where, "--" + where.replace("_", "-"))
        problems.append(f"invalid {shown}: {error['msg']}")
    return "; ".join(problems)


def _safe(settings: Settings) -> str:
    return make_url(settings.sqlalchemy_url).render_as_string(hide_password=True)


def _reason(exc: SQLAlchemyError) -> str:
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
