"""Selections, follow-ups and running a job twice, through the real worker."""

from __future__ import annotations

import uuid

from common.jobs.events import JobEvents
from common.llm.prompts import NOT_IN_BOOK, NOT_IN_SELECTION
from common.platform.redis_client import make_redis
from tests.support.stack import Stack
from workers.chat import answer_chat_job
from workers.resources import WorkerResources

SELECTION = (
    "Domain randomization varies textures, lighting, masses and friction during training so "
    "that a policy learned in simulation treats the real world as one more variation."
)


def test_selected_text_is_the_first_source(stack: Stack) -> None:
    headers = stack.signup()
    job = stack.wait(
        headers,
        stack.submit(
            headers, message="What does domain randomization vary?", selected_text=SELECTION
        )["id"],
    )
    assert job["status"] == "completed"
    assert "textures" in job["answer"] and "[1]" in job["answer"]
    assert job["citations"][0]["source"] == "selection"


def test_explain_this_answers_about_the_selection(stack: Stack) -> None:
    headers = stack.signup()
    job_id = stack.submit(
        headers, message="Explain this in simpler words", selected_text=SELECTION
    )["id"]
    job = stack.wait(headers, job_id)
    assert job["status"] == "completed" and job["answer"] != NOT_IN_SELECTION
    assert "Domain randomization varies textures" in job["answer"] and "[1]" in job["answer"]


def test_selection_that_does_not_answer_says_so(stack: Stack) -> None:
    headers = stack.signup()
    job_id = stack.submit(
        headers, message="Which port does the ROS 2 daemon use?", selected_text=SELECTION
    )["id"]
    assert stack.wait(headers, job_id)["answer"] == NOT_IN_SELECTION


def test_question_outside_the_book_is_refused(stack: Stack) -> None:
    headers = stack.signup()
    job_id = stack.submit(headers, message="Recipe for sourdough bread with rye flour?")["id"]
    assert stack.wait(headers, job_id)["answer"] == NOT_IN_BOOK


def test_follow_up_uses_the_conversation(stack: Stack) -> None:
    headers = stack.signup()
    first = stack.wait(headers, stack.submit(headers, message="What is a ROS 2 service?")["id"])
    follow_up = stack.submit(
        headers, message="How is it different from an action?",
        conversation_id=first["conversation_id"],
    )  # fmt: skip
    job = stack.wait(headers, follow_up["id"])
    assert job["conversation_id"] == first["conversation_id"]
    assert job["status"] == "completed"
    assert "action" in job["answer"].lower()
    detail = stack.client.get(
        f"/v1/conversations/{first['conversation_id']}", headers=headers
    ).get_json()
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant"] * 2


def test_running_a_job_twice_answers_it_once(idle_stack: Stack) -> None:
    """A redelivered task finds the job already claimed or finished and leaves it alone."""
    headers = idle_stack.signup()
    job_id = idle_stack.submit(
        headers, message="What does domain randomization vary?", selected_text=SELECTION
    )["id"]
    resources = WorkerResources(idle_stack.settings)

    answer_chat_job(resources, uuid.UUID(job_id))
    answer_chat_job(resources, uuid.UUID(job_id))

    job = idle_stack.client.get(f"/v1/chat/jobs/{job_id}", headers=headers).get_json()
    assert job["status"] == "completed" and job["attempts"] == 1
    events = JobEvents(make_redis(idle_stack.settings)).read(uuid.UUID(job_id))
    assert [e.event for e in events].count("done") == 1
