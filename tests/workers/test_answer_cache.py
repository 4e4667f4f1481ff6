"""The answer cache end to end: real API, Redis, Celery worker, database and SDK + simulator.

A repeat is answered from the stored job with no model call, marked `cached` in its body and
events; a near miss, a follow-up, a source rated down and a changed index all call the model;
the setting turns it off. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from bench.openai_sim import SimulatorHandle
from common.jobs.events import JobEvents
from common.platform.redis_client import make_redis
from tests.support.stack import SAMPLE_TEXTBOOK, NewStack, Stack, simulator_settings

pytestmark = pytest.mark.slow  # real processes: `make test` runs it, `make test-fast` not


@pytest.fixture(scope="module")
def cache_stack(
    new_stack: NewStack, simulator: SimulatorHandle, database_url: str
) -> Iterator[Stack]:
    """A stack answering through the simulator, with the answer cache on (its default)."""
    name = "cache-" + database_url.partition(":")[0]
    settings = {**simulator_settings(simulator), "answer_cache_enabled": True}
    with new_stack(name, database_url=database_url, **settings) as running:
        yield running


def model_calls(sim: SimulatorHandle) -> int:
    """Chat completions the simulator answered since its last reset."""
    return sum(1 for r in sim.log() if r["endpoint"] == "/v1/chat/completions")


def ask(stack: Stack, headers: dict[str, str], message: str, **body: Any) -> dict[str, Any]:
    """Submit a question and wait for its finished job."""
    return stack.wait(headers, stack.submit(headers, message=message, **body)["id"])


def answered(stack: Stack, message: str) -> dict[str, Any]:
    """A fresh reader's answered question: a cache source."""
    job = ask(stack, stack.signup(), message)
    assert job["status"] == "completed" and job["label"] == "answered", job
    assert job["cached"] is False and job["cached_from"] is None
    return job


def test_a_repeat_is_answered_from_the_cache_without_a_model_call(
    cache_stack: Stack, sim: SimulatorHandle
) -> None:
    first = answered(cache_stack, "What is a ROS 2 node?")
    calls = model_calls(sim)
    assert calls == 1

    again = ask(cache_stack, cache_stack.signup("classmate"), "what is a ros 2 node")

    assert model_calls(sim) == calls
    assert again["status"] == "completed" and again["cached"] is True
    assert again["cached_from"] == first["id"]
    assert again["answer"] == first["answer"] and again["citations"] == first["citations"]
    assert again["usage"]["total_tokens"] == 0 and again["metrics"]["llm_calls"] == 0
    assert again["label"] == "answered"
    events = JobEvents(make_redis(cache_stack.settings)).read(uuid.UUID(again["id"]))
    kinds = [e.event for e in events]
    assert kinds[-3:] == ["delta", "citations", "done"], kinds
    marked = [e for e in events if e.event in ("status", "delta", "done") and e.data.get("cached")]
    assert {e.data["cached_from"] for e in marked} == {first["id"]}
    assert {"delta", "done"} <= {e.event for e in marked}


def test_a_near_miss_calls_the_model(cache_stack: Stack, sim: SimulatorHandle) -> None:
    answered(cache_stack, "How do ROS 2 nodes publish messages on topics?")
    near = ask(cache_stack, cache_stack.signup(), "How do ROS 2 nodes subscribe to topics?")

    assert near["cached"] is False and model_calls(sim) == 2


def test_a_follow_up_is_never_served_from_the_cache(
    cache_stack: Stack, sim: SimulatorHandle
) -> None:
    answered(cache_stack, "What is Gazebo?")
    headers = cache_stack.signup()
    opener = ask(cache_stack, headers, "What is a digital twin?")
    calls = model_calls(sim)

    follow_up = ask(
        cache_stack, headers, "What is Gazebo?", conversation_id=opener["conversation_id"]
    )

    assert follow_up["status"] == "completed" and follow_up["cached"] is False
    assert model_calls(sim) > calls


def test_a_source_rated_down_is_not_served_again(cache_stack: Stack, sim: SimulatorHandle) -> None:
    headers = cache_stack.signup()
    first = ask(cache_stack, headers, "What is a vision-language-action model?")
    assert first["label"] == "answered", first
    rating = {"rating": "down", "reason": "wrong"}
    rated = cache_stack.client.post(
        f"/v1/chat/jobs/{first['id']}/feedback", json=rating, headers=headers
    )
    assert rated.status_code in (200, 201), rated.get_json()

    again = ask(cache_stack, cache_stack.signup(), "What is a vision-language-action model?")

    assert again["cached"] is False and model_calls(sim) == 2


def test_a_new_index_version_invalidates_cached_answers(
    cache_stack: Stack, sim: SimulatorHandle
) -> None:
    answered(cache_stack, "What is a digital twin in simulation?")
    assert cache_stack.ingest(SAMPLE_TEXTBOOK)["status"] == "completed"

    again = ask(cache_stack, cache_stack.signup(), "What is a digital twin in simulation?")

    assert again["cached"] is False and model_calls(sim) == 2
    # The answer after the change is the new version's source.
    third = ask(cache_stack, cache_stack.signup(), "What is a digital twin in simulation?")
    assert third["cached_from"] == again["id"] and model_calls(sim) == 2


def test_the_setting_turns_the_cache_off(new_stack: NewStack, sim: SimulatorHandle) -> None:
    settings = {**simulator_settings(sim), "answer_cache_enabled": False}
    with new_stack("cache-off", **settings) as stack:
        first = ask(stack, stack.signup(), "What is a ROS 2 topic?")
        again = ask(stack, stack.signup(), "What is a ROS 2 topic?")

    assert first["status"] == again["status"] == "completed"
    assert again["cached"] is False and model_calls(sim) == 2


def test_twins_asked_at_once_wait_for_one_answer(cache_stack: Stack, sim: SimulatorHandle) -> None:
    sim.update_config(ttft_s=1.0)
    readers = [cache_stack.signup() for _ in range(3)]
    message = "How does Gazebo simulate sensors?"
    ids = [cache_stack.submit(headers, message=message)["id"] for headers in readers]

    jobs = [cache_stack.wait(headers, job_id) for headers, job_id in zip(readers, ids, strict=True)]

    assert all(job["status"] == "completed" for job in jobs), jobs
    sources = [job for job in jobs if not job["cached"]]
    assert len(sources) == 1 and sources[0]["label"] == "answered", jobs
    assert all(job["cached_from"] == sources[0]["id"] for job in jobs if job["cached"])
    assert model_calls(sim) == 1


def test_a_copy_rated_down_retires_its_source(cache_stack: Stack, sim: SimulatorHandle) -> None:
    first = answered(cache_stack, "How do ROS 2 services work?")
    reader = cache_stack.signup()
    copy = ask(cache_stack, reader, "How do ROS 2 services work?")
    assert copy["cached_from"] == first["id"], copy
    rated = cache_stack.client.post(
        f"/v1/chat/jobs/{copy['id']}/feedback", json={"rating": "down"}, headers=reader
    )
    assert rated.status_code in (200, 201), rated.get_json()

    again = ask(cache_stack, cache_stack.signup(), "How do ROS 2 services work?")

    assert again["cached"] is False and model_calls(sim) == 2


def test_an_answer_about_one_selection_is_not_served_for_another(
    cache_stack: Stack, sim: SimulatorHandle
) -> None:
    page = "/ros2/nodes-and-topics"
    one = {"selected_text": "A node is a process that performs computation.", "page_url": page}
    other = {"selected_text": "A topic is a named bus over which nodes exchange messages."}

    first = ask(cache_stack, cache_stack.signup(), "Explain this selection.", **one)
    elsewhere = ask(cache_stack, cache_stack.signup(), "Explain this selection.", **other)
    again = ask(cache_stack, cache_stack.signup(), "Explain this selection.", **one)

    assert first["label"] == "answered" and elsewhere["cached"] is False
    assert again["cached_from"] == first["id"] and model_calls(sim) == 2
