"""The whole chat-job path with PostgreSQL as the database."""

from __future__ import annotations

import pytest

from tests.support.stack import Stack

pytestmark = (
    pytest.mark.slow
)  # end to end through real processes: `make test` runs it, `make test-fast` not


def test_question_is_answered_on_postgresql(pg_stack: Stack) -> None:
    headers = pg_stack.signup()
    first = pg_stack.wait(headers, pg_stack.submit(headers, message="What is a ROS 2 node?")["id"])
    assert first["status"] == "completed" and "[1]" in first["answer"]

    follow_up = pg_stack.submit(
        headers, message="And what is a topic?", conversation_id=first["conversation_id"]
    )
    assert pg_stack.wait(headers, follow_up["id"])["status"] == "completed"
    listing = pg_stack.client.get("/v1/conversations", headers=headers).get_json()
    assert [c["id"] for c in listing["data"]] == [first["conversation_id"]]
