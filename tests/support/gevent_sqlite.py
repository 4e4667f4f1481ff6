"""Run as a script: bookchat's SQLite engine under gevent's patching, as in gunicorn's worker.

`python -m tests.support.gevent_sqlite FOLDER` patches the standard library as gunicorn's
gevent worker does, builds engines with `make_sqlite_engine` on files in FOLDER, and prints
what it saw as one JSON object: the ORM's pysqlite behaviours through the offloaded connection,
and, while another connection holds SQLite's write lock, how often another greenlet ran and
how the waiting write ended (`tests/common/platform/test_sqlite_offload.py` asserts on it).
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sqlite3  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from gevent.event import Event  # noqa: E402
from sqlalchemy import ForeignKey, String, func, select, text, update  # noqa: E402
from sqlalchemy.exc import DBAPIError, IntegrityError  # noqa: E402
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column  # noqa: E402

from common.platform.db import is_unavailable, make_sqlite_engine  # noqa: E402


class Base(DeclarativeBase):
    pass


class Shelf(Base):
    __tablename__ = "shelves"
    id: Mapped[int] = mapped_column(primary_key=True)  # rowid: the ORM reads lastrowid
    name: Mapped[str] = mapped_column(String(40), unique=True)


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    shelf_id: Mapped[int] = mapped_column(ForeignKey("shelves.id"))
    title: Mapped[str] = mapped_column(String(80))


def orm_behaviours(url: str) -> dict[str, Any]:
    """What the pysqlite dialect relies on, through the ORM and the offloaded connection."""
    engine = make_sqlite_engine(url, busy_seconds=5)
    Base.metadata.create_all(engine)  # DDL through the proxy
    out: dict[str, Any] = {}
    with engine.connect() as connection:
        out["dbapi_connection"] = type(connection.connection.dbapi_connection).__name__
        out["journal_mode"] = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    with Session(engine) as session:
        shelf = Shelf(name="robots")
        session.add(shelf)
        session.flush()
        out["lastrowid"] = shelf.id
        session.add_all([Book(shelf_id=shelf.id, title=f"ROS {n}") for n in (1, 2)])
        session.commit()
        renamed = session.execute(update(Book).where(Book.title == "ROS 1").values(title="ROS one"))
        out["rowcount"] = renamed.rowcount  # type: ignore[attr-defined]
        session.rollback()
        titles = session.execute(select(Book.title).order_by(Book.id)).all()
        out["after_rollback"] = [title for (title,) in titles]
        matched = select(func.count()).where(Book.title.regexp_match("^ROS [0-9]$"))
        out["regexp_count"] = session.scalar(matched)  # create_function("regexp", ...)
        cursor = session.connection().exec_driver_sql("SELECT id, title FROM books")
        out["description"] = [column[0] for column in cursor.cursor.description]
        out["fetchone"] = list(cursor.fetchone() or ())
        out["fetchall"] = len(cursor.fetchall())
        session.add(Shelf(name="robots"))
        try:
            session.flush()
        except IntegrityError as exc:
            out["duplicate"] = {"error": type(exc).__name__, "unavailable": is_unavailable(exc)}
        session.rollback()
        session.add(Book(shelf_id=999, title="orphan"))  # PRAGMA foreign_keys=ON holds
        try:
            session.flush()
        except IntegrityError as exc:
            out["foreign_key"] = type(exc).__name__
        session.rollback()
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as connection:
        connection.execute(text("INSERT INTO shelves (name) VALUES ('kept')"))
        raw: Any = connection.connection.dbapi_connection
        out["autocommit_in_transaction"] = raw.in_transaction
    with engine.connect() as connection:
        out["autocommit_kept"] = connection.execute(
            text("SELECT count(*) FROM shelves WHERE name = 'kept'")
        ).scalar()
    engine.dispose()
    return out


def ticking() -> tuple[Callable[[], int], gevent.Greenlet]:
    """A greenlet that counts how often it ran: the event loop's pulse."""
    ticks = [0]

    def tick() -> None:
        while True:
            ticks[0] += 1
            gevent.sleep(0.01)

    return (lambda: ticks[0]), gevent.spawn(tick)


def write_while_another_holds_the_lock(url: str, path: str) -> dict[str, Any]:
    """Another connection holds the write lock; a write waits (in a thread) and then fails."""
    engine = make_sqlite_engine(url, busy_seconds=1)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE notes (body TEXT)"))
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, as a Celery worker's commit holds it
    count, ticker = ticking()
    before = count()
    out: dict[str, Any] = {}
    try:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO notes VALUES ('waited')"))
        out["error"] = None
    except DBAPIError as exc:
        out["error"] = str(exc.orig)
        out["unavailable"] = is_unavailable(exc)
    out["ticks_while_waiting"] = count() - before
    ticker.kill()
    holder.execute("ROLLBACK")
    with engine.begin() as connection:  # the lock is free: the same write goes through
        connection.execute(text("INSERT INTO notes VALUES ('after')"))
        out["after_release"] = connection.execute(text("SELECT count(*) FROM notes")).scalar()
    holder.close()
    engine.dispose()
    return out


def waiters_queue_until_the_lock_is_free(url: str, path: str, writers: int) -> dict[str, Any]:
    """Another connection holds the lock while `writers` greenlets write; then it lets go."""
    engine = make_sqlite_engine(url, busy_seconds=10)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE queue (who INTEGER)"))
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    done: list[int] = []

    def write(who: int) -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO queue VALUES (:who)"), {"who": who})
        done.append(who)

    count, ticker = ticking()
    greenlets = [gevent.spawn(write, n) for n in range(writers)]
    gevent.sleep(0.3)  # every writer has found the lock taken by now
    out: dict[str, Any] = {"done_while_held": list(done), "ticks_while_held": count()}
    holder.execute("COMMIT")
    gevent.joinall(greenlets, raise_error=True)
    ticker.kill()
    with engine.connect() as connection:
        out["rows"] = connection.execute(text("SELECT count(*) FROM queue")).scalar()
    holder.close()
    engine.dispose()
    return out


def a_waiter_keeps_no_lock_while_unscheduled(url: str, path: str) -> dict[str, Any]:
    """A writer waits for another connection's lock; the lock is let go while the loop is busy.

    Until the busy loop ends, the waiting greenlet cannot run: the lock must be free meanwhile
    (another connection can take it), and the write lands once the greenlet runs.
    """
    engine = make_sqlite_engine(url, busy_seconds=10)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE waits (who TEXT)"))
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")

    def write() -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO waits VALUES ('waiter')"))

    waiter = gevent.spawn(write)
    gevent.sleep(0.2)  # the waiter found the lock taken and waits in a thread
    holder.execute("COMMIT")
    monkey.get_original("time", "sleep")(0.3)  # the loop is late: the thread sees the lock free
    probe = sqlite3.connect(path, isolation_level=None, timeout=0, check_same_thread=False)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        free = True
    except sqlite3.OperationalError:
        free = False
    probe.close()
    waiter.join(timeout=10)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT count(*) FROM waits")).scalar()
    holder.close()
    engine.dispose()
    return {"free_while_unscheduled": free, "rows": rows, "waiter_ok": waiter.successful()}


def greenlets_take_turns(url: str, hold: float, busy_seconds: float) -> dict[str, Any]:
    """Greenlet A writes, then waits `hold` s before its COMMIT; greenlet B writes meanwhile."""
    engine = make_sqlite_engine(url, busy_seconds=busy_seconds)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS turns (who TEXT)"))
        connection.execute(text("DELETE FROM turns"))
    order: list[str] = []
    a_wrote = Event()

    def a() -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO turns VALUES ('a')"))
            a_wrote.set()
            gevent.sleep(hold)  # as a request waiting on Redis inside its unit of work
            order.append("a commits")
        order.append("a committed")

    def b() -> None:
        a_wrote.wait()
        order.append("b writes")
        try:
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO turns VALUES ('b')"))
            order.append("b committed")
        except DBAPIError as exc:
            order.append(f"b failed: {exc.orig} (unavailable: {is_unavailable(exc)})")

    gevent.joinall([gevent.spawn(a), gevent.spawn(b)], raise_error=True)
    with engine.connect() as connection:
        rows = [who for (who,) in connection.execute(text("SELECT who FROM turns ORDER BY rowid"))]
    engine.dispose()
    return {"order": order, "rows": rows}


def many_commits(url: str, path: Path, commits: int) -> dict[str, Any]:
    """Commits enough rows that the log must be copied into the database file meanwhile."""
    engine = make_sqlite_engine(url, busy_seconds=5)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE pages (body TEXT)"))
        raw: Any = connection.connection.dbapi_connection
        settings = {  # read by a SELECT, which runs on the loop as the app's statements do
            name: connection.exec_driver_sql(f"SELECT * FROM pragma_{name}").scalar()
            for name in ("busy_timeout", "journal_mode")
        }
    for _ in range(commits):
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO pages VALUES (:body)"), {"body": "x" * 2000})
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT count(*) FROM pages")).scalar()
    engine.dispose()
    return {
        "connection": type(raw).__name__,
        "pragmas": settings,
        "rows": rows,
        # Rows reach the database file only through checkpoints (the rest is in the -wal file).
        "database_bytes": path.stat().st_size,
    }


def main(folder: Path) -> dict[str, Any]:
    """Every scenario, each on a database file of its own."""
    return {
        "orm": orm_behaviours(f"sqlite:///{folder / 'orm.db'}"),
        "locked": write_while_another_holds_the_lock(
            f"sqlite:///{folder / 'locked.db'}", str(folder / "locked.db")
        ),
        "turns": greenlets_take_turns(f"sqlite:///{folder / 'turns.db'}", 0.2, 10),
        "turn_too_long": greenlets_take_turns(f"sqlite:///{folder / 'long.db'}", 2.0, 0.5),
        "waiters": waiters_queue_until_the_lock_is_free(
            f"sqlite:///{folder / 'waiters.db'}", str(folder / "waiters.db"), 5
        ),
        "unscheduled": a_waiter_keeps_no_lock_while_unscheduled(
            f"sqlite:///{folder / 'unscheduled.db'}", str(folder / "unscheduled.db")
        ),
        "many_commits": many_commits(f"sqlite:///{folder / 'many.db'}", folder / "many.db", 450),
    }


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
