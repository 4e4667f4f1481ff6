"""The worker's write transactions hold SQLite's lock for their writes only.

On SQLite one writer at a time holds the database's lock, from its first write to its commit,
and the API's submits wait for it meanwhile. The worker process runs many threads on one
interpreter at a lower CPU priority, so every statement (and every trip through Python)
between the first write and the commit stretches that wait. The claim, the completion and the
lease renewal therefore read first and write last, in as few statements as possible.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event

from common.jobs.chat_jobs import claim_chat_job
from common.platform.db import session_scope
from common.platform.models import JobKind
from tests.support.stack import Stack
from workers.chat import answer_chat_job
from workers.leases import LeaseKeeper
from workers.resources import WorkerResources

SELECTION = "A ROS 2 node is a process that computes; nodes talk over topics and services."
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


@contextmanager
def write_transactions(engine: Engine) -> Iterator[list[list[str]]]:
    """The statements of each write transaction on the engine, from its first write to its end.

    SQLite's driver begins a transaction at the first write, so that write is where the lock
    is taken; reads before it run outside any transaction.
    """
    seen: list[list[str]] = []
    open_: dict[int, list[str]] = {}

    def before(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        key = id(conn.connection.dbapi_connection)
        if key not in open_ and statement.lstrip().upper().startswith(_WRITES):
            open_[key] = []
        if key in open_:
            open_[key].append(_shape(statement))

    def ended(conn: Any) -> None:
        statements = open_.pop(id(conn.connection.dbapi_connection), None)
        if statements is not None:
            seen.append(statements)

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "commit", ended)
    event.listen(engine, "rollback", ended)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "commit", ended)
        event.remove(engine, "rollback", ended)


def _shape(statement: str) -> str:
    """A statement as its verb and, for a write, its table: "UPDATE chat_jobs", "SELECT"."""
    words = statement.replace("(", " ").split()
    verb = words[0].upper()
    if verb == "UPDATE":
        return f"UPDATE {words[1]}"
    if verb in ("INSERT", "DELETE", "REPLACE"):
        return f"{verb} {words[2]}"
    return verb


@pytest.fixture(scope="module")
def resources(idle_stack: Stack) -> WorkerResources:
    """One worker's resources for the module (local-mode Qdrant admits one client per folder)."""
    return WorkerResources(idle_stack.settings)


def _engine(resources: WorkerResources) -> Engine:
    bind = resources.sessions.kw["bind"]
    assert isinstance(bind, Engine)
    return bind


def test_claim_and_completion_write_without_reading_inside_the_lock(
    idle_stack: Stack, resources: WorkerResources
) -> None:
    """Claim: the job, its conversation and the account are read before the two writes.
    Completion: the answer, its label and profile fields go in one UPDATE of the job."""
    headers = idle_stack.signup()
    job_id = idle_stack.submit(headers, message="What is a node?", selected_text=SELECTION)["id"]

    with write_transactions(_engine(resources)) as transactions:
        answer_chat_job(resources, uuid.UUID(job_id))

    job = idle_stack.client.get(f"/v1/chat/jobs/{job_id}", headers=headers).get_json()
    assert job["status"] == "completed" and job["attempts"] == 1
    claim, completion = transactions[0], transactions[-1]
    assert claim == ["UPDATE chat_jobs", "INSERT job_attempts"]
    assert completion == ["UPDATE chat_jobs", "UPDATE job_attempts"]


def test_a_claim_of_a_job_not_runnable_writes_nothing(
    idle_stack: Stack, resources: WorkerResources
) -> None:
    """A redelivered job that already ran is seen by a read: no write, no lock."""
    headers = idle_stack.signup()
    job_id = idle_stack.submit(headers, message="What is a topic?", selected_text=SELECTION)["id"]
    answer_chat_job(resources, uuid.UUID(job_id))

    with write_transactions(_engine(resources)) as transactions:
        answer_chat_job(resources, uuid.UUID(job_id))

    assert transactions == []


def test_renewing_many_leases_is_one_statement(
    idle_stack: Stack, resources: WorkerResources
) -> None:
    """One UPDATE renews every lease the process holds; a job no longer its attempt's is lost."""
    headers = idle_stack.signup()
    ids = [uuid.UUID(idle_stack.submit(headers, message=f"Question {n}?")["id"]) for n in range(5)]
    with session_scope(resources.sessions) as session:
        for job_id in ids:
            assert claim_chat_job(session, job_id, 60, "test") is not None
    keeper = LeaseKeeper(resources.sessions, lease_seconds=60, renew_seconds=3600)
    for job_id in ids[:-1]:
        keeper.hold(JobKind.CHAT, job_id, 1)
    keeper.hold(JobKind.CHAT, ids[-1], 2)  # not its running attempt: lost
    keeper.stop()

    with write_transactions(_engine(resources)) as transactions:
        keeper.renew_all()

    assert transactions == [["UPDATE chat_jobs"]]
    assert [job_id for job_id in ids if keeper.lost(JobKind.CHAT, job_id)] == [ids[-1]]
