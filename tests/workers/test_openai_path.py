"""Answers from the official OpenAI SDK talking to the project's simulator."""

from __future__ import annotations

import time
import uuid

from bench.openai_sim import SimulatorHandle
from common.jobs.events import JobEvents
from common.platform.redis_client import make_redis
from tests.support.stack import Stack


def test_answer_comes_from_the_model_with_citations_and_usage(
    openai_stack: Stack, sim: SimulatorHandle
) -> None:
    headers = openai_stack.signup()
    job_id = openai_stack.submit(headers, message="What is a ROS 2 node?")["id"]

    job = openai_stack.wait(headers, job_id)

    assert job["status"] == "completed", job
    assert job["model"] == "gpt-4o-mini"
    assert "[1]" in job["answer"]
    assert job["citations"][0]["source"] == "01-ros2/nodes-and-topics.md"
    assert job["usage"]["total_tokens"] == (
        job["usage"]["prompt_tokens"] + job["usage"]["completion_tokens"]
    )
    requests = [r for r in sim.log() if r["endpoint"] == "/v1/chat/completions"]
    assert len(requests) == 1 and requests[0]["admitted"]
    assert requests[0]["max_tokens"] == openai_stack.settings.chat_max_tokens


def test_exhausted_quota_fails_the_job_with_a_clear_error(
    openai_stack: Stack, sim: SimulatorHandle
) -> None:
    sim.update_config(insufficient_quota=True)
    headers = openai_stack.signup()

    job = openai_stack.wait(headers, openai_stack.submit(headers, message="What is URDF?")["id"])

    assert job["status"] == "failed"
    assert job["error"]["code"] == "insufficient_quota"
    assert job["answer"] is None


def test_cancel_stops_a_job_while_it_streams(openai_stack: Stack, sim: SimulatorHandle) -> None:
    sim.update_config(per_token_s=0.05)
    headers = openai_stack.signup()
    job_id = openai_stack.submit(headers, message="Explain ROS 2 topics.")["id"]
    events = JobEvents(make_redis(openai_stack.settings))
    deadline = time.monotonic() + 30
    while not any(e.event == "delta" for e in events.read(uuid.UUID(job_id))):
        assert time.monotonic() < deadline, openai_stack.worker_log()
        time.sleep(0.05)

    cancelled = openai_stack.client.post(f"/v1/chat/jobs/{job_id}/cancel", headers=headers)

    assert cancelled.status_code == 200
    assert cancelled.get_json()["status"] == "cancelled"
    time.sleep(1.0)  # let the worker notice; it must not overwrite the cancellation
    job = openai_stack.client.get(f"/v1/chat/jobs/{job_id}", headers=headers).get_json()
    assert job["status"] == "cancelled" and job["answer"] is None
    streamed = [e.event for e in events.read(uuid.UUID(job_id))]
    assert streamed[-1] == "done" and "citations" not in streamed


def test_a_follow_up_is_searched_as_the_models_standalone_question(
    openai_stack: Stack, sim: SimulatorHandle
) -> None:
    headers = openai_stack.signup()
    first = openai_stack.wait(
        headers, openai_stack.submit(headers, message="What is a ROS 2 node?")["id"]
    )
    follow_up = openai_stack.submit(
        headers, message="How do I run it?", conversation_id=first["conversation_id"]
    )

    job = openai_stack.wait(headers, follow_up["id"])

    assert job["status"] == "completed", job
    rewrites = [r for r in sim.log() if "follow-up question" in str(r.get("messages", "")).lower()]
    assert len(rewrites) == 1
    assert job["usage"]["rewrite_tokens"] > 0
    assert job["usage"]["total_tokens"] == (
        job["usage"]["prompt_tokens"] + job["usage"]["completion_tokens"]
    )
    assert job["citations"][0]["source"] == "01-ros2/nodes-and-topics.md"
