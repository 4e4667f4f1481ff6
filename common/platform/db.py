"""Database engine and sessions: one session per request or task, committed at its boundary."""

from __future__ import annotations

import logging
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

from common.platform.after_commit import commit
from common.platform.settings import Settings
from common.platform.sqlite_offload import (
    WriteGate,
    gevent_patched,
    offloaded_connect,
    size_threadpool,
)

T = TypeVar("T")
log = logging.getLogger(__name__)
# PostgreSQL SQLSTATEs that mean "not reachable now": connection exceptions (class 08),
# admin or crash shutdown, starting up, too many connections, and a statement the server
# cancelled at its statement_timeout (bookchat cancels nothing itself: the server is too slow).
_PG_OUTAGE_STATES = ("08", "57P01", "57P02", "57P03", "53300", "57014")
# SQLite result codes that mean "try again": another writer holds the file, or it can't be opened.
_SQLITE_OUTAGE_CODES = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR")
SQLITE_BUSY_SECONDS = 30  # how long a writer waits for SQLite's lock before "database is locked"


def make_engine(settings: Settings) -> Engine:
    """Create the engine; SQLite gets WAL, foreign keys and a busy timeout, PostgreSQL deadlines."""
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        return make_sqlite_engine(url, SQLITE_BUSY_SECONDS)
    # psycopg is the [postgres] extra: imported only when a PostgreSQL engine is made.
    from common.platform.db_deadline import bound_waits

    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        pool_timeout=10,
        # Fail fast when the server is unreachable, so callers can answer 503 or retry.
        connect_args={"connect_timeout": settings.database_connect_timeout_seconds},
    )
    # ... and when it stops answering on an open connection (see common/platform/db_deadline.py).
    bound_waits(engine, settings.database_statement_timeout_seconds)
    event.listen(engine, "before_cursor_execute", _without_nul, retval=True)
    return engine


def make_sqlite_engine(url: str, busy_seconds: float) -> Engine:
    """A SQLite engine; under gevent, waits for its lock and its checkpoints leave the event loop.

    See common/platform/sqlite_offload.py (it sets the busy timeout to 0 on the loop, and waits
    in threads instead). `busy_seconds`: how long a writer waits for the lock before "database
    is locked".
    """
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": busy_seconds},
        # SQLite connections are cheap; under gevent each request in flight holds one (it may
        # wait on Redis meanwhile): a hundred at once should neither queue for five nor open
        # and close a connection each.
        pool_size=20,
        max_overflow=30,
    )
    if gevent_patched():
        size_threadpool()
        event.listen(engine, "do_connect", offloaded_connect(WriteGate(busy_seconds)))

    def configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={round(busy_seconds * 1000)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Deleted rows (DELETE /v1/me) are overwritten with zeros, not left in free space.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    event.listen(engine, "connect", configure)
    return engine


def _without_nul(
    _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
) -> tuple[str, Any]:
    # PostgreSQL text cannot hold NUL. The edge refuses requests with one (web/input_limits.py);
    # text from elsewhere (a model's answer, a book's page) gets U+FFFD instead of a failed job.
    return statement, _replace_nul(parameters) if _has_nul(parameters) else parameters


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_nul(item) for item in value)
    return False


def _replace_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {key: _replace_nul(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_replace_nul(item) for item in value)
    return value


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success (then send what waited for it), roll back on error,
    always close."""
    session = factory()
    try:
        yield session
        commit(session)
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def is_unavailable(exc: BaseException) -> bool:
    """Whether a database error means "unreachable for now" rather than a bad query or row."""
    if isinstance(exc, PoolTimeout):  # no pooled connection came free in time
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:  # the dialect recognised a lost connection
        return True
    if not isinstance(exc, OperationalError | InterfaceError):
        return False  # IntegrityError, ProgrammingError, DataError, ...: our bug or the caller's
    orig = exc.orig
    if isinstance(orig, sqlite3.Error):
        return str(getattr(orig, "sqlite_errorname", "")).startswith(_SQLITE_OUTAGE_CODES)
    psycopg = sys.modules.get("psycopg")  # loaded if a PostgreSQL engine raised this
    if psycopg is not None and isinstance(orig, psycopg.Error):
        # No SQLSTATE: the server never answered (refused, reset, timed out, closed).
        return orig.sqlstate is None or orig.sqlstate.startswith(_PG_OUTAGE_STATES)
    return False


def retry_while_unavailable(work: Callable[[], T], bound_seconds: float) -> T:
    """Run `work`, retrying it while the database is unreachable, for up to `bound_seconds`."""
    retrying = Retrying(
        retry=retry_if_exception(is_unavailable),
        stop=stop_after_delay(bound_seconds),
        wait=wait_exponential(multiplier=0.2, max=2.0),
        reraise=True,
    )
    return retrying(work)


def run_unit(
    factory: sessionmaker[Session], work: Callable[[Session], T], bound_seconds: float
) -> T:
    """One unit of work in its own session, redone while the database is briefly unreachable."""

    def unit() -> T:
        with session_scope(factory) as session:
            return work(session)

    return retry_while_unavailable(unit, bound_seconds)


def checkpoint_wal(engine: Engine) -> None:
    """Copy SQLite's write-ahead log into the database and empty it (nothing on PostgreSQL).

    Run after a deletion, so the deleted rows do not linger in the -wal file until SQLite's
    next automatic checkpoint.
    """
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as connection:
        busy, _pages, _moved = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    if busy:
        log.warning("the SQLite checkpoint after a deletion was blocked; the next one copies it")
