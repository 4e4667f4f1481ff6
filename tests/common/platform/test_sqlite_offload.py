"""SQLite under gevent: the pysqlite dialect works through the offloaded connection, a lock wait
leaves the event loop running, and this process's writers take turns instead of deadlocking.

The scenarios run in a child process patched as gunicorn's gevent worker is
(`tests/support/gevent_sqlite.py`), on real database files.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from common.platform.db import make_engine
from tests.support.stack import REPO_ROOT, make_settings


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What the gevent-patched child saw."""
    folder = tmp_path_factory.mktemp("gevent-sqlite")
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.gevent_sqlite", str(folder)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # An error raised in a pool thread reaches its greenlet, not gevent's traceback printer.
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_orm_works_through_the_offloaded_connection(seen: dict[str, Any]) -> None:
    orm = seen["orm"]
    assert orm["dbapi_connection"] == "OffloadedConnection"
    assert orm["journal_mode"] == "wal"  # the connect hook ran through the proxy
    assert orm["lastrowid"] == 1
    assert orm["rowcount"] == 1
    assert orm["after_rollback"] == ["ROS 1", "ROS 2"]  # the UPDATE was rolled back
    assert orm["regexp_count"] == 2  # the dialect's create_function("regexp", ...)
    assert orm["description"] == ["id", "title"]
    assert orm["fetchone"] == [1, "ROS 1"] and orm["fetchall"] == 1
    # A bad row is the caller's error, never "the database is unavailable".
    assert orm["duplicate"] == {"error": "IntegrityError", "unavailable": False}
    assert orm["foreign_key"] == "IntegrityError"
    # isolation_level is set on the real connection: AUTOCOMMIT leaves no transaction open.
    assert orm["autocommit_in_transaction"] is False and orm["autocommit_kept"] == 1


def test_a_write_waiting_for_another_connections_lock_leaves_the_loop_running(
    seen: dict[str, Any],
) -> None:
    locked = seen["locked"]
    # The wait ended as SQLite ends it, and is an outage (503 / a retried write) as before.
    assert locked["error"] == "database is locked" and locked["unavailable"] is True, locked
    # Another greenlet ran while the write waited: the wait was not on the event loop.
    assert locked["ticks_while_waiting"] > 1, locked
    assert locked["after_release"] == 1, locked


def test_a_writer_waits_for_the_greenlet_holding_the_lock_to_commit(
    seen: dict[str, Any],
) -> None:
    # B writes while A holds its transaction open (waiting, as on Redis): B's wait must let
    # A run to its COMMIT. A wait inside SQLite's C busy handler froze A with it.
    turns = seen["turns"]
    assert turns["order"] == ["b writes", "a commits", "a committed", "b committed"], turns
    assert turns["rows"] == ["a", "b"], turns


def test_a_turn_not_given_within_the_busy_timeout_is_database_is_locked(
    seen: dict[str, Any],
) -> None:
    turn = seen["turn_too_long"]
    assert turn["order"][:2] == [
        "b writes",
        "b failed: database is locked (unavailable: True)",
    ], turn
    assert turn["rows"] == ["a"], turn


def test_processes_without_gevent_keep_plain_sqlite3(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, None, f"sqlite:///{tmp_path / 'plain.db'}")
    engine = make_engine(settings)
    with engine.connect() as connection:
        assert isinstance(connection.connection.dbapi_connection, sqlite3.Connection)
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30_000
    engine.dispose()


def test_the_loop_never_waits_and_checkpoints_still_happen(seen: dict[str, Any]) -> None:
    many = seen["many_commits"]
    assert many["connection"] == "OffloadedConnection"
    # On the event loop SQLite waits for nothing (a wait is redone in a thread), and never
    # checkpoints on commit; the process checkpoints in a thread every CHECKPOINT_EVERY commits.
    assert many["pragmas"] == {"busy_timeout": 0, "journal_mode": "wal"}
    assert many["rows"] == 450
    assert many["database_bytes"] > 450 * 2000 * 0.8, many  # 2 checkpoints copied 400 rows


def test_writers_wait_for_another_process_lock_then_all_land(seen: dict[str, Any]) -> None:
    waiters = seen["waiters"]
    assert waiters["done_while_held"] == [], waiters  # nobody wrote past the held lock
    assert waiters["ticks_while_held"] > 1, waiters  # while five writers waited, the loop ran
    assert waiters["rows"] == 5, waiters  # and each landed once the lock was free


def test_a_waiting_writer_holds_no_lock_until_it_runs_again(seen: dict[str, Any]) -> None:
    # The lock came free while the loop was busy: the waiter's thread saw it free, but the
    # waiter writes only once it runs. Writing from the thread held the lock for the whole
    # lag, and every other writer of the process queued behind it.
    unscheduled = seen["unscheduled"]
    assert unscheduled["free_while_unscheduled"] is True, unscheduled
    assert unscheduled["waiter_ok"] is True and unscheduled["rows"] == 1, unscheduled
