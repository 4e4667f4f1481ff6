"""SQLite under gevent: nothing waits on the event loop; waits for the lock run in real threads.

SQLite waits for its write lock inside C (the busy handler sleeps in `sqlite3_step`), where
gevent cannot switch greenlets. In gunicorn's gevent worker that froze the whole process; worse,
the greenlet holding the lock (between its INSERT and its COMMIT, waiting on Redis) could not
run either, so the waiter slept its full busy timeout and failed with "database is locked".

So, in a gevent-patched process only, every connection of a SQLite engine is an
`OffloadedConnection`, whose SQLite busy timeout is 0 on the event loop:

- SELECT, INSERT, UPDATE, DELETE, COMMIT and ROLLBACK run inline, and SQLite cannot wait there:
  a statement that finds the lock taken (another process writes) fails at once with
  SQLITE_BUSY, having done nothing. A thread of gevent's pool (`hub.threadpool`) then polls
  for the lock every `RETRY_SECONDS` (SQLite's own busy handler sleeps up to 100 ms between
  tries) by taking it and letting go at once, until it is free or the busy timeout passes;
  the statement is then tried again inline (and waits again if another writer came first).
  The empty transaction sqlite3 began for each failed try is rolled back. The sqlite3 module
  releases the GIL while SQLite works, so the event loop goes on meanwhile.
- Everything else (PRAGMAs, DDL, connect and close) runs in a thread with SQLite's busy timeout.
- In WAL mode, with synchronous=NORMAL, a COMMIT appends to the log without an fsync; the
  checkpoint that copies the log into the database (with fsyncs) is what may take long. These
  connections never checkpoint on commit (wal_autocheckpoint=0): every `CHECKPOINT_EVERY`
  commits of the process, the committing request runs a PASSIVE checkpoint in a thread after
  its commit. The Celery workers' connections keep SQLite's automatic checkpoints.

A submit (two INSERTs and a COMMIT) thus costs no thread hand-off while the lock is free.

Writers of this process that found the lock taken queue at one cooperative gate (a gevent
lock, first come first served) before they wait in a thread: one pool thread at a time polls
for the lock, the others wait as greenlets, and the pool stays free for checkpoints, connects
and gevent's DNS. A writer that finds the lock free takes no turn: its transaction (two
INSERTs and a COMMIT for a submit) runs inline without yielding, so it never holds the lock
across a switch. (A gate held for the whole transaction was tried first: each turn then ended
only when the committing greenlet was scheduled again, and under a burst writers queued at it
for hundreds of milliseconds. Next, the waiting statement itself ran in the thread: the
waiter then held the lock from there until its greenlet was scheduled again to commit, the
loop's lag under a spike, and every other writer queued behind it.) A turn not given within
the busy timeout raises the `OperationalError` SQLite raises ("database is locked",
SQLITE_BUSY).

Processes without gevent's patching (Celery workers, the CLI, tests) keep plain sqlite3.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

T = TypeVar("T")
# Statements that run inline: they either read, or write inside the lock they take at once.
_INLINE = ("SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "WITH")
# At least this many threads: one waiting for the lock, checkpoints, connects, gevent's DNS.
THREADPOOL_SIZE = 4
RETRY_SECONDS = 0.002  # how often a write that found the lock taken tries again (in a thread)
CHECKPOINT_EVERY = 200  # commits of the process between two checkpoints (~1,000 pages)


def gevent_patched() -> bool:
    """Whether gevent has patched this process's threads (gunicorn's gevent worker)."""
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a dependency
        return False
    return bool(monkey.is_module_patched("threading"))


def _locked() -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("database is locked")
    error.sqlite_errorcode = sqlite3.SQLITE_BUSY
    error.sqlite_errorname = "SQLITE_BUSY"
    return error


def _busy(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY


class WriteGate:
    """This process's writers waiting for the lock, one at a time in order; its commits, counted."""

    def __init__(self, timeout: float) -> None:
        from gevent.lock import Semaphore

        self._lock = Semaphore(1)
        self.timeout = timeout
        self.commits = 0

    def enter(self, timeout: float | None = None) -> None:
        """Wait for the gate (up to `timeout`, else the busy timeout); SQLite's own "database is
        locked" after that."""
        wait = self.timeout if timeout is None else max(0.0, timeout)
        if not self._lock.acquire(timeout=wait):
            raise _locked()

    def leave(self) -> None:
        """Let the next waiter in."""
        self._lock.release()

    def checkpoint_due(self) -> bool:
        """Count a commit; True once every CHECKPOINT_EVERY."""
        self.commits += 1
        return self.commits % CHECKPOINT_EVERY == 0


def _sleep(seconds: float) -> None:
    """The unpatched time.sleep: pool threads have no event loop to wait on."""
    from gevent import monkey

    monkey.get_original("time", "sleep")(seconds)


def _in_thread(call: Callable[..., T], *args: Any) -> T:
    """`call(*args)` in a pool thread; this greenlet waits (and gets its error) cooperatively."""
    from gevent import get_hub, getcurrent

    # The error comes back as a value: gevent's pool would print the traceback of every
    # exception a thread raises, and an IntegrityError (a replayed idempotency key) is routine.
    hub = get_hub()
    if getcurrent() is hub:  # e.g. the pool closing a collected connection: cannot wait here
        return call(*args)
    value, error = hub.threadpool.apply(_outcome, (call, args))
    if error is not None:
        raise error
    return cast(T, value)


def _outcome(call: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, BaseException | None]:
    try:
        return call(*args), None
    except Exception as exc:  # handed to the waiting greenlet, which raises it
        return None, exc


class OffloadedCursor:
    """A sqlite3 cursor whose statements run where `OffloadedConnection.run` decides."""

    def __init__(self, cursor: sqlite3.Cursor, connection: OffloadedConnection) -> None:
        self._cursor = cursor
        self._connection = connection

    def execute(self, statement: str, parameters: Any = ()) -> OffloadedCursor:
        """Run one statement."""
        self._connection.run(self._cursor.execute, statement, parameters)
        return self

    def executemany(self, statement: str, rows: Any) -> OffloadedCursor:
        """Run one statement for each row of parameters."""
        self._connection.run(self._cursor.executemany, statement, rows)
        return self

    def __iter__(self) -> Any:
        return iter(self._cursor)

    def __getattr__(self, name: str) -> Any:
        # fetch*, description, rowcount, lastrowid, close, arraysize: the cursor's own.
        return getattr(self._cursor, name)


class OffloadedConnection:
    """A sqlite3 connection for a gevent process (see the module's docstring)."""

    def __init__(self, connection: sqlite3.Connection, gate: WriteGate) -> None:
        object.__setattr__(self, "_connection", connection)
        object.__setattr__(self, "_gate", gate)

    def cursor(self) -> OffloadedCursor:
        """A cursor whose statements run as `run` decides."""
        return OffloadedCursor(self._connection.cursor(), self)

    def run(self, call: Callable[..., T], statement: str, parameters: Any) -> T:
        """Run a statement inline if SQLite need not wait for it, else in a thread."""
        if not statement.lstrip()[:8].upper().startswith(_INLINE):
            return self._waiting(call, statement, parameters)
        fresh = not self._connection.in_transaction  # a BUSY then leaves nothing behind
        try:
            return call(statement, parameters)
        except sqlite3.OperationalError as exc:
            if not (fresh and _busy(exc)):
                raise
        # The lock is taken: wait in a thread, behind this process's other waiters, until it is
        # free; then write here, on the loop. A write done in the thread would hold the lock
        # until this greenlet is scheduled again to commit, and under load that is the loop's
        # lag: every other writer of the process would queue behind it meanwhile.
        deadline = time.monotonic() + self._gate.timeout
        while True:
            self._connection.rollback()  # the empty transaction sqlite3 began for the try
            self._gate.enter(deadline - time.monotonic())
            try:
                _in_thread(self._wait_until_free, deadline)
            finally:
                self._gate.leave()
            try:
                return call(statement, parameters)
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or time.monotonic() > deadline:
                    raise

    def commit(self) -> None:
        """Commit inline (no fsync in WAL mode), then checkpoint in a thread when due."""
        writing = self._connection.in_transaction
        self._connection.commit()
        if writing and self._gate.checkpoint_due():
            self._waiting(self._checkpoint)

    def rollback(self) -> None:
        """Roll back inline: it only drops what the transaction wrote."""
        self._connection.rollback()

    def close(self) -> None:
        """Close in a thread: the last connection to close checkpoints."""
        _in_thread(self._connection.close)

    def _wait_until_free(self, deadline: float) -> None:
        """In a thread: return once SQLite's write lock is free, without keeping it.

        Tried every `RETRY_SECONDS` rather than with SQLite's busy handler, whose sleeps grow to
        100 ms: the wait ends the moment the lock is free. Each try takes the lock and lets go
        at once (BEGIN IMMEDIATE, ROLLBACK); "database is locked" once the deadline passes.
        """
        raw = self._connection
        while True:
            _sleep(RETRY_SECONDS)
            try:
                raw.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or time.monotonic() > deadline:
                    raise
                continue
            raw.rollback()
            return

    def _checkpoint(self) -> None:
        # Read its one row: a statement left stepping would refuse the next COMMIT.
        self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _waiting(self, call: Callable[..., T], *args: Any) -> T:
        """`call(*args)` in a thread, where SQLite waits for the lock up to the busy timeout."""
        raw = self._connection
        busy_ms = round(self._gate.timeout * 1000)

        def wait_there() -> T:
            raw.execute(f"PRAGMA busy_timeout={busy_ms}")
            try:
                return call(*args)
            finally:
                raw.execute("PRAGMA busy_timeout=0")

        return _in_thread(wait_there)

    def __getattr__(self, name: str) -> Any:
        # isolation_level, in_transaction, create_function, ...: the connection's own.
        return getattr(self._connection, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # SQLAlchemy sets isolation_level (and autocommit) on the DBAPI connection.
        setattr(self._connection, name, value)


def offloaded_connect(gate: WriteGate) -> Callable[..., OffloadedConnection]:
    """A `do_connect` handler: open the sqlite3 connection in a thread, never waiting inline."""

    def connect(_dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> Any:
        def open_connection() -> sqlite3.Connection:
            raw = sqlite3.connect(*cargs, **{**cparams, "timeout": 0})
            raw.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run in a thread instead
            return raw

        return OffloadedConnection(_in_thread(open_connection), gate)

    return connect


def size_threadpool() -> None:
    """Give gevent's thread pool the size SQLite needs (it starts threads only on demand)."""
    from gevent import get_hub

    pool = get_hub().threadpool
    if pool.maxsize < THREADPOOL_SIZE:
        pool.maxsize = THREADPOOL_SIZE
