"""Bounded waits on PostgreSQL: a server that stops answering mid-connection is an outage.

psycopg has no client-side read time-out, `statement_timeout` is enforced by the server (a
frozen server never sends the cancel), and TCP keepalives do not fire while the server's
kernel still acknowledges. So every PostgreSQL connection bookchat opens is a
`BoundedConnection`: psycopg runs every exchange on an open connection (execute, fetch, commit,
rollback, SQLAlchemy's pre-ping and pool reset) through `Connection.wait`, whose wait functions
already take a deadline; ours passes one, and when it passes the connection is closed (it is
mid-protocol and cannot be reused) and an `OperationalError` without SQLSTATE is raised.
SQLAlchemy sees a closed connection, invalidates it, and `common.platform.db.is_unavailable`
calls it an outage: the API answers 503 `database_unavailable`, a worker's write is retried
and then left to the watchdog.

Why this and not the alternatives: the deadline is checked by psycopg's own wait loop (it wakes
every 0.1 s), so it works the same with every wait function psycopg picks: the C `wait_c` in
Celery's prefork workers and the CLI, and the poll-based wait it uses once gevent has patched
`select` in gunicorn. A per-request `gevent.Timeout` would cover the API only, and would leave
the connection in an unknown state; a watchdog thread that shuts the socket down would need a
thread per process (started again after Celery forks) for the same effect. Waits psycopg bounds
itself (cancel, notifies) keep their own deadline.

The server is told the same bound as `statement_timeout` (set at connect, before the URL's own
`options`, which win): a slow but live server cancels the statement itself, and the connection
stays usable; the client's deadline is that bound plus `CLIENT_GRACE_SECONDS`, so it fires only
when the server has stopped answering.
"""

from __future__ import annotations

from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.abc import PQGen
from sqlalchemy import Engine, event

RV = TypeVar("RV")
# Time for a live server's own cancel (statement_timeout) to arrive before the client gives up.
CLIENT_GRACE_SECONDS = 2.0
_WAIT_INTERVAL = 0.1  # psycopg's own: how often a wait wakes to check its deadline and signals


class BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection that closes itself when the server leaves a wait unanswered."""

    answer_timeout: float = 12.0

    def wait(
        self, gen: PQGen[RV], interval: float = _WAIT_INTERVAL, timeout: float | None = None
    ) -> RV:
        """Wait for the server as psycopg does, for at most `answer_timeout` seconds."""
        if timeout is not None:
            return super().wait(gen, interval, timeout)  # psycopg bounded this wait itself
        try:
            return super().wait(gen, interval, self.answer_timeout)
        except pg_errors._WaitTimeout:
            self.close()  # mid-protocol: never to be reused; the pool discards it
            raise psycopg.OperationalError(
                f"PostgreSQL did not answer within {self.answer_timeout:g} s;"
                " the connection was closed"
            ) from None


def with_statement_timeout(options: str | None, seconds: float) -> str:
    """libpq `options` that set `statement_timeout` first, so options already given win."""
    ours = f"-c statement_timeout={round(seconds * 1000)}"
    return f"{ours} {options}" if options else ours


def bound_waits(engine: Engine, statement_timeout_seconds: float) -> None:
    """Open the engine's connections as `BoundedConnection`s with a server statement_timeout."""
    answer_timeout = statement_timeout_seconds + CLIENT_GRACE_SECONDS

    def connect(_dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> Any:
        cparams["options"] = with_statement_timeout(
            cparams.get("options"), statement_timeout_seconds
        )
        connection = BoundedConnection.connect(*cargs, **cparams)
        connection.answer_timeout = answer_timeout
        return connection

    event.listen(engine, "do_connect", connect)
