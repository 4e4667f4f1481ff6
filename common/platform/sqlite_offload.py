"""SQLite under gevent: waits for the write lock and the disk happen off the event loop.

SQLite waits for its write lock inside C (the busy handler sleeps in `sqlite3_step`), where
gevent cannot switch greenlets. In gunicorn's gevent worker that froze the whole process; worse,
the greenlet holding the lock (between its INSERT and its COMMIT, waiting on Redis) could not
run either, so the waiter slept its full busy timeout and failed with "database is locked".

So, in a gevent-patched process only, every connection of a SQLite engine is an
`OffloadedConnection`, which runs on the event loop only what cannot wait:

- a SELECT (in WAL mode a reader never waits for a writer), and the statements of a write
  transaction that already holds the lock;
- a transaction's first write, tried once with SQLite's busy timeout at 0: the lock is usually
  free and the write goes through at once. If another process holds it, nothing was written;
  the empty transaction is rolled back and the write runs again in a thread, where it waits;
- everything else (COMMIT, which may checkpoint the log into the database with fsyncs, ROLLBACK
  of a transaction, PRAGMAs, connecting and closing) in gevent's pool of real OS threads
  (`hub.threadpool`). The sqlite3 module releases the GIL while SQLite works, so the event loop
  goes on meanwhile. A submit costs one thread hand-off: its COMMIT.

Writers of this process also queue for one cooperative gate (FIFO) before they start a write
transaction and leave it at COMMIT or ROLLBACK. SQLite admits one writer at a time anyway; the
gate makes the wait cooperative among greenlets and hands the lock on at once, instead of
leaving each waiter to SQLite's busy handler, which polls with growing sleeps (up to 100 ms)
and in no order. Other processes (the Celery workers) still meet SQLite's own lock, waited
for in a pool thread. A gate not given within the busy timeout raises the same
`OperationalError` ("database is locked", SQLITE_BUSY) SQLite would have raised.

Processes without gevent's patching (Celery workers, the CLI, tests) keep plain sqlite3.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar, cast

T = TypeVar("T")
# Statements after which sqlite3 (legacy transaction control) holds a write transaction open.
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN", "WITH", "CREATE", "DROP", "ALTER")
# SQLite writes one at a time; a few more threads let reads-heavy statements (PRAGMA, a
# checkpoint) and the rare connect wait beside it.
THREADPOOL_SIZE = 4
_BUSY = object()  # a write found the lock taken and must wait for it


def gevent_patched() -> bool:
    """Whether gevent has patched this process's threads (gunicorn's gevent worker)."""
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a dependency
        return False
    return bool(monkey.is_module_patched("threading"))


class WriteGate:
    """This process's writers, one at a time, in arrival order (a gevent lock)."""

    def __init__(self, timeout: float) -> None:
        from gevent.lock import Semaphore

        self._lock = Semaphore(1)
        self.timeout = timeout

    def enter(self) -> None:
        """Wait for the gate; SQLite's own "database is locked" after the busy timeout."""
        if not self._lock.acquire(timeout=self.timeout):
            error = sqlite3.OperationalError("database is locked")
            error.sqlite_errorcode = sqlite3.SQLITE_BUSY
            error.sqlite_errorname = "SQLITE_BUSY"
            raise error

    def leave(self) -> None:
        """Let the next writer in."""
        self._lock.release()


def _in_thread(call: Callable[..., T], *args: Any) -> T:
    """`call(*args)` in a pool thread; this greenlet waits (and gets its error) cooperatively."""
    from gevent import get_hub

    # The error comes back as a value: gevent's pool would print the traceback of every
    # exception a thread raises, and an IntegrityError (a replayed idempotency key) is routine.
    value, error = get_hub().threadpool.apply(_outcome, (call, args))
    if error is not None:
        raise error
    return cast(T, value)


def _outcome(call: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, BaseException | None]:
    try:
        return call(*args), None
    except Exception as exc:  # handed to the waiting greenlet, which raises it
        return None, exc


class OffloadedCursor:
    """A sqlite3 cursor whose statements that may wait run in a real thread."""

    def __init__(self, cursor: sqlite3.Cursor, connection: OffloadedConnection) -> None:
        self._cursor = cursor
        self._connection = connection

    def execute(self, statement: str, parameters: Any = ()) -> OffloadedCursor:
        """Run one statement (see the module's docstring for where)."""
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
        object.__setattr__(self, "_in_gate", False)
        object.__setattr__(self, "_writing", False)

    def cursor(self) -> OffloadedCursor:
        """A cursor whose statements run as `run` decides."""
        return OffloadedCursor(self._connection.cursor(), self)

    def run(self, call: Callable[..., T], statement: str, parameters: Any) -> T:
        """Run a statement: inline when it cannot wait, else in a thread (writers via the gate)."""
        head = statement.lstrip()[:8].upper()
        if head.startswith("SELECT") or self._holds_lock():
            return call(statement, parameters)
        write = head.startswith(_WRITES)
        if write and not self._in_gate:
            self._gate.enter()
            object.__setattr__(self, "_in_gate", True)
        try:
            result: Any = _BUSY
            if write and not self._connection.in_transaction:
                result = self._without_waiting(call, statement, parameters)
            if result is _BUSY:
                result = _in_thread(call, statement, parameters)
        finally:
            if not self._connection.in_transaction:
                self._end()  # autocommit, or a statement that failed before its BEGIN
        # The first write of a transaction took the lock: the next statements cannot wait.
        object.__setattr__(self, "_writing", write and self._connection.in_transaction)
        return cast(T, result)

    def _without_waiting(self, call: Callable[..., T], statement: str, parameters: Any) -> Any:
        """Take the lock inline if it is free (the usual case); `_BUSY` if another has it.

        SQLite's busy timeout is 0 for this try, so it never waits on the event loop; a busy
        lock leaves nothing done (the write had not started), so the transaction that
        sqlite3 opened is rolled back and the statement is run again, waiting, in a thread.
        """
        raw = self._connection
        raw.execute("PRAGMA busy_timeout=0")
        try:
            return call(statement, parameters)
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            raw.rollback()
            return _BUSY
        finally:
            raw.execute(f"PRAGMA busy_timeout={round(self._gate.timeout * 1000)}")

    def commit(self) -> None:
        """Commit in a thread (SQLite may checkpoint the log into the database), open the gate."""
        self._finish(self._connection.commit)

    def rollback(self) -> None:
        """Roll back (in a thread if a transaction is open), then open the gate."""
        self._finish(self._connection.rollback)

    def close(self) -> None:
        """Close (SQLite rolls back what is open), then open the gate."""
        try:
            _in_thread(self._connection.close)
        finally:
            self._end()

    def _finish(self, call: Callable[[], None]) -> None:
        if not self._connection.in_transaction:
            call()  # nothing to write: no wait either (the pool's reset on return)
            self._end()
            return
        try:
            _in_thread(call)
        finally:
            if not self._connection.in_transaction:  # a failed COMMIT is rolled back next
                self._end()

    def _holds_lock(self) -> bool:
        return bool(self._writing and self._connection.in_transaction)

    def _end(self) -> None:
        object.__setattr__(self, "_writing", False)
        self._leave_gate()

    def _leave_gate(self) -> None:
        if self._in_gate:
            object.__setattr__(self, "_in_gate", False)
            self._gate.leave()

    def __getattr__(self, name: str) -> Any:
        # isolation_level, in_transaction, create_function, ...: the connection's own.
        return getattr(self._connection, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # SQLAlchemy sets isolation_level (and autocommit) on the DBAPI connection.
        setattr(self._connection, name, value)


def offloaded_connect(gate: WriteGate) -> Callable[..., OffloadedConnection]:
    """A `do_connect` handler: open the sqlite3 connection in a thread and wrap it."""

    def connect(_dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> Any:
        raw = _in_thread(lambda: sqlite3.connect(*cargs, **cparams))
        return OffloadedConnection(raw, gate)

    return connect


def size_threadpool() -> None:
    """Give gevent's thread pool the size SQLite needs (it starts threads only on demand)."""
    from gevent import get_hub

    pool = get_hub().threadpool
    if pool.maxsize < THREADPOOL_SIZE:
        pool.maxsize = THREADPOOL_SIZE
