"""The fast lane end to end: a repeat skips a chat queue full of new questions.

Real API, Redis, Celery worker process, database and SDK + simulator. The model's limit is 6
calls a minute, so a backlog of new questions keeps going back to the queue; a repeat of a
stored answer, sent after the backlog, is answered from the cache while most of the backlog
has not even been claimed once (in the chat queue alone it would come after all of them).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from bench.openai_sim import SimulatorHandle
from common.platform.db import session_scope
from common.platform.models import ChatJob, JobStatus
from tests.support.stack import NewStack, Stack, simulator_settings

pytestmark = pytest.mark.slow  # real processes: `make test` runs it, `make test-fast` not
BACKLOG = 12
LIMITS = {"llm_rpm": 6, "llm_headroom": 1.0, "llm_burst_seconds": 10.0}


@pytest.fixture
def lane_stack(
    new_stack: NewStack, simulator: SimulatorHandle, database_url: str
) -> Iterator[Stack]:
    """The cache on, a slow model limit, and one worker (two threads)."""
    name = "lane-" + database_url.partition(":")[0]
    settings = {**simulator_settings(simulator), "answer_cache_enabled": True, **LIMITS}
    with new_stack(name, database_url=database_url, **settings) as running:
        yield running


def _rows(stack: Stack, ids: list[str]) -> list[tuple[str, int]]:
    """(status, attempts) of these jobs."""
    with session_scope(stack.resources.sessions) as session:
        wanted = [uuid.UUID(i) for i in ids]
        rows = session.execute(
            select(ChatJob.status, ChatJob.attempts).where(ChatJob.id.in_(wanted))
        ).all()
        return [(status, attempts) for status, attempts in rows]


def test_a_repeat_is_answered_before_a_backlog_of_new_questions(lane_stack: Stack) -> None:
    reader = lane_stack.signup()
    source_id = lane_stack.submit(reader, message="What is a ROS 2 node?")["id"]
    source = lane_stack.wait(reader, source_id)
    assert source["status"] == "completed" and source["label"] == "answered", source

    headers = lane_stack.signup("class")
    backlog = [
        lane_stack.submit(headers, message=f"How do ROS 2 nodes use topic number {n}?")["id"]
        for n in range(BACKLOG)
    ]
    classmate = lane_stack.signup("classmate")
    repeat_id = lane_stack.submit(classmate, message="What is a ROS 2 node?")["id"]
    repeat = lane_stack.wait(classmate, repeat_id)

    assert repeat["status"] == "completed" and repeat["cached"] is True, repeat
    assert repeat["cached_from"] == source["id"]
    rows = _rows(lane_stack, backlog)
    not_done = [r for r in rows if r[0] != JobStatus.COMPLETED.value]
    never_claimed = [r for r in rows if r[1] == 0]
    # In the chat queue alone, every job of the backlog is claimed once before the repeat.
    assert len(not_done) >= BACKLOG - 2, rows
    assert len(never_claimed) >= BACKLOG // 2, rows
