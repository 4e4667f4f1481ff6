"""A finished job's stream that lost events (a Redis crash) is completed from the job's row."""

from __future__ import annotations

import uuid
from typing import Any

from common.jobs.events import stream_key
from tests.support.sse import join_answer, read_events
from tests.support.stack import Stack


def test_a_stream_that_lost_its_ending_is_replayed_from_the_row(stack: Stack) -> None:
    headers = stack.signup()
    job = stack.submit(headers, message="What is a ROS 2 node?")
    done = stack.wait(headers, job["id"])
    assert done["status"] == "completed"
    client, key = stack.resources.redis, stream_key(uuid.UUID(job["id"]))
    entries: list[Any] = client.xrange(key)  # type: ignore[assignment]
    # Keep the first delta only, as if Redis crashed before it saved the rest.
    first_delta = next(i for i, (_id, fields) in enumerate(entries) if fields["event"] == "delta")
    client.xdel(key, *[event_id for event_id, _ in entries[first_delta + 1 :]])

    events = read_events(stack, headers, job["id"])

    assert join_answer(events) == done["answer"]
    assert [e["event"] for e in events[-3:]] == ["delta", "citations", "done"]
    assert events[-1]["id"] is None  # replayed frames: a reconnect resumes from real events


def test_a_reader_at_the_end_of_a_finished_stream_gets_its_ending_again(stack: Stack) -> None:
    headers = stack.signup()
    job = stack.submit(headers, message="What is a ROS 2 topic?")
    done = stack.wait(headers, job["id"])
    events = read_events(stack, headers, job["id"])
    assert events[-1]["event"] == "done"

    at_end = read_events(stack, headers, job["id"], last_event_id=events[-1]["id"])
    beyond = read_events(stack, headers, job["id"], last_event_id="99999999999999-0")

    assert at_end == beyond == [events[-1]]  # the ending once more, not an empty stream
    assert join_answer(events) == done["answer"]


def test_a_reader_resuming_after_the_stream_expired_gets_the_row(stack: Stack) -> None:
    headers = stack.signup()
    job = stack.submit(headers, message="What is a ROS 2 service?")
    done = stack.wait(headers, job["id"])
    events = read_events(stack, headers, job["id"])
    stack.resources.redis.delete(stream_key(uuid.UUID(job["id"])))  # past its retention

    first_delta = next(i for i, e in enumerate(events) if e["event"] == "delta")

    resumed = read_events(stack, headers, job["id"], last_event_id=events[first_delta]["id"])

    assert [e["event"] for e in resumed] == ["reset", "delta", "citations", "done"]
    assert join_answer(events[: first_delta + 1] + resumed) == done["answer"]
