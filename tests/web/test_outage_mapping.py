"""Which errors are outages (503) and which are bugs (500), decided on real errors."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest
import redis
from flask import Response
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from common.platform.db import is_unavailable
from tests.support.stack import Stack
from web.problems import DATABASE_OUTAGE, REDIS_OUTAGE, outage_of
from web.resources import db


def _error_of(action: Callable[[], object]) -> Exception:
    try:
        action()
    except Exception as exc:
        return exc
    raise AssertionError("no error")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Engine:
    """A SQLite file with one table and no busy timeout."""
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}", connect_args={"timeout": 0})
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    return engine


def _execute(engine: Engine, statement: str) -> Callable[[], object]:
    def run() -> object:
        with engine.begin() as conn:
            return conn.execute(text(statement))

    return run


@pytest.mark.parametrize(
    "statement",
    ["INSERT INTO t VALUES (1)", "SELECT * FROM no_such_table", "SELEKT 1"],
    ids=["integrity", "missing-table", "syntax"],
)
def test_sqlite_bugs_are_not_outages(sqlite_engine: Engine, statement: str) -> None:
    exc = _error_of(_execute(sqlite_engine, statement))

    assert isinstance(exc, SQLAlchemyError)
    assert not is_unavailable(exc)
    assert outage_of(exc) is None


def test_a_locked_sqlite_database_is_an_outage(sqlite_engine: Engine, tmp_path: Path) -> None:
    holder = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        exc = _error_of(_execute(sqlite_engine, "INSERT INTO t VALUES (2)"))
    finally:
        holder.close()

    assert outage_of(exc) == DATABASE_OUTAGE


def test_an_unreachable_postgresql_is_an_outage() -> None:
    engine = create_engine(f"postgresql+psycopg://nobody@127.0.0.1:{_closed_port()}/none")

    exc = _error_of(_execute(engine, "SELECT 1"))

    assert outage_of(exc) == DATABASE_OUTAGE


@pytest.mark.parametrize(
    "statement",
    ["SELECT * FROM no_such_table", "SELECT 1/0"],
    ids=["missing-table", "division"],
)
def test_postgresql_errors_the_server_reports_are_not_outages(
    postgres_url: str, statement: str
) -> None:
    engine = create_engine(postgres_url)
    try:
        exc = _error_of(_execute(engine, statement))
    finally:
        engine.dispose()

    assert isinstance(exc, SQLAlchemyError)
    assert outage_of(exc) is None


def test_a_statement_the_server_cancelled_at_its_time_out_is_an_outage(postgres_url: str) -> None:
    # bookchat sets statement_timeout on every connection (common/platform/db_deadline.py):
    # a statement that outlives it means the server is too slow to answer now, like a hung one.
    engine = create_engine(postgres_url)
    try:
        exc = _error_of(_execute(engine, "SET statement_timeout = 1; SELECT pg_sleep(1)"))
    finally:
        engine.dispose()

    assert outage_of(exc) == DATABASE_OUTAGE


def test_unreachable_redis_is_an_outage_and_a_bad_command_is_not(redis_url: str) -> None:
    down = redis.Redis.from_url(f"redis://127.0.0.1:{_closed_port()}/0")  # as make_redis
    up = redis.Redis.from_url(redis_url)
    key = f"outage-mapping:{_closed_port()}"
    up.set(key, "a string", ex=60)

    assert outage_of(_error_of(down.ping)) == REDIS_OUTAGE
    assert outage_of(_error_of(lambda: up.xread({key: "0-0"}))) is None  # WRONGTYPE


def test_a_bad_statement_in_a_request_is_still_a_500(idle_stack: Stack) -> None:
    app = idle_stack.app
    with app.test_request_context("/v1/me"):
        exc = _error_of(lambda: db().execute(text("SELECT * FROM no_such_table")))
        response = cast(Response, app.handle_user_exception(exc))

    assert response.status_code == 500
    assert response.get_json()["code"] == "internal_error"
