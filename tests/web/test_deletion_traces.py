"""Deletion that deletes: no message text in the logs, none left in SQLite's files."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.support.stack import Stack


def sqlite_files(stack: Stack) -> list[Path]:
    """The stack's SQLite database file and its write-ahead log."""
    database = make_url(stack.settings.sqlalchemy_url).database
    assert database
    return [Path(database), Path(f"{database}-wal")]


def test_the_worker_logs_ids_and_lengths_never_the_message(stack: Stack) -> None:
    secret = f"zorblax{uuid.uuid4().hex[:12]}"
    headers = stack.signup("quiet")
    first = stack.submit(headers, message=f"How do I cook a {secret} for dinner?")
    done = stack.wait(headers, first["id"])
    # A follow-up is rewritten into a query of its own, which is the reader's words too.
    follow = stack.submit(
        headers, message=f"And what about {secret} sauce?", conversation_id=done["conversation_id"]
    )
    stack.wait(headers, follow["id"])

    assert stack.log_path is not None
    log = stack.log_path.read_text()
    assert first["id"] in log  # the worker did log these jobs
    assert secret not in log


def test_after_delete_me_the_sqlite_files_hold_no_trace_of_the_messages(
    idle_stack: Stack,
) -> None:
    secret = f"quokkatrace{uuid.uuid4().hex[:12]}"
    headers = idle_stack.signup("forgotten")
    for turn in range(3):
        idle_stack.submit(headers, message=f"Question {turn} about {secret}?")
    files = sqlite_files(idle_stack)
    assert any(secret.encode() in path.read_bytes() for path in files if path.exists())

    response = idle_stack.client.delete("/v1/me", headers=headers)

    assert response.status_code == 204
    for path in files:
        if path.exists():
            assert secret.encode() not in path.read_bytes(), path.name
