"""The fast lane end to end: a repeat skips a chat queue full of new questions.

Real API, Redis, Celery worker process (two threads), database and SDK + simulator. The model
takes 3 s to its first token, so a backlog of new questions holds both threads for a while; a
repeat of a stored answer, sent after the backlog, is answered from the cache while nearly all
of the backlog is still waiting. In the chat queue alone it would be claimed after every job of
the backlog, so only after all but the last two had completed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from bench.openai_sim import SimulatorHandle
from common.platform.db import session_scope
from common.platform.models import ChatJob, JobStatus
from tests.support.faults import wait_until
from tests.support.stack import NewStack, Stack, simulator_settings

pytestmark = pytest.mark.slow  # real processes: `make test` runs it, `make test-fast` not
BACKLOG = 10


@pytest.fixture
def lane_stack(
    new_stack: NewStack, simulator: SimulatorHandle, database_url: str
) -> Iterator[Stack]:
    """The cache on, and one worker (two threads)."""
    name = "lane-" + database_url.partition(":")[0]
    settings = {**simulator_settings(simulator), "answer_cache_enabled": True}
    with new_stack(name, database_url=database_url, **settings) as running:
        yield running


def _statuses(stack: Stack, ids: list[str]) -> list[str]:
    """The status of each of these jobs."""
    with session_scope(stack.resources.sessions) as session:
        wanted = [uuid.UUID(i) for i in ids]
        return list(session.scalars(select(ChatJob.status).where(ChatJob.id.in_(wanted))))


def test_a_repeat_is_answered_before_a_backlog_of_new_questions(
    lane_stack: Stack, sim: SimulatorHandle
) -> None:
    reader = lane_stack.signup()
    source_id = lane_stack.submit(reader, message="What is a ROS 2 node?")["id"]
    source = lane_stack.wait(reader, source_id)
    assert source["status"] == "completed" and source["label"] == "answered", source
    sim.update_config(ttft_s=3.0)

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
    statuses = _statuses(lane_stack, backlog)
    completed = statuses.count(JobStatus.COMPLETED.value)
    # The fast lane: claimed when one of the two first jobs ends. The chat queue alone: after
    # the last job of the backlog was claimed, so with at least BACKLOG - 2 completed.
    assert completed <= 3, statuses


def test_a_repeat_does_not_wait_for_a_thread_held_by_the_backlog(
    lane_stack: Stack, sim: SimulatorHandle
) -> None:
    reader = lane_stack.signup()
    source = lane_stack.wait(
        reader, lane_stack.submit(reader, message="What is a ROS 2 node?")["id"]
    )
    assert source["status"] == "completed" and source["label"] == "answered", source
    sim.update_config(ttft_s=60.0)  # each backlog job holds its thread for a minute

    headers = lane_stack.signup("class")
    # Not the other test's backlog: its answers, stored in the same database and Redis by
    # then, would serve these from the cache.
    backlog = [
        lane_stack.submit(headers, message=f"Which messages does ROS 2 service {n} carry?")["id"]
        for n in range(BACKLOG)
    ]
    wait_until(
        lambda: _statuses(lane_stack, backlog).count(JobStatus.IN_PROGRESS.value) == 2,
        30,
        f"the backlog did not take both threads\n{lane_stack.worker_log()}",
    )
    classmate = lane_stack.signup("classmate")
    repeat_id = lane_stack.submit(classmate, message="What is a ROS 2 node?")["id"]
    repeat = lane_stack.wait(classmate, repeat_id)

    assert repeat["status"] == "completed" and repeat["cached"] is True, repeat
    # Both pool threads still wait for their first token: the lane's own thread answered.
    statuses = _statuses(lane_stack, backlog)
    assert JobStatus.COMPLETED.value not in statuses, (statuses, lane_stack.worker_log())
