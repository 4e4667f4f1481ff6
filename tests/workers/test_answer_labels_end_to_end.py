"""Every finished chat job gets its label and top similarity from the real worker."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from common.llm.prompts import NOT_IN_BOOK
from common.platform.db import session_scope
from common.platform.models import ChatJob
from tests.support.stack import Stack


def top_similarity(stack: Stack, job_id: str) -> float | None:
    """The job's recorded top similarity (shown in the admin view, not the reader's)."""
    with session_scope(stack.resources.sessions) as session:
        return session.scalar(select(ChatJob.top_similarity).where(ChatJob.id == uuid.UUID(job_id)))


def test_a_question_the_book_answers_is_labelled_answered(stack: Stack) -> None:
    headers = stack.signup()
    job = stack.wait(headers, stack.submit(headers, message="What is a ROS 2 node?")["id"])

    assert job["status"] == "completed" and job["citations"], job
    assert job["label"] == "answered"
    similarity = top_similarity(stack, job["id"])
    assert similarity is not None and similarity >= 0.48


def test_a_robotics_question_the_book_lacks_is_refused_with_its_closest_passages(
    stack: Stack,
) -> None:
    headers = stack.signup()
    question = "How do ROS 2 nodes publish topics with MoveIt?"
    job = stack.wait(headers, stack.submit(headers, message=question)["id"])

    assert job["answer"] == NOT_IN_BOOK and job["citations"] == []
    assert job["label"] == "refused"
    # The author sees where the book almost answers.
    assert job["sources"] and job["sources"][0]["source"] == "01-ros2/nodes-and-topics.md"
    assert [s["n"] for s in job["sources"]] == list(range(1, len(job["sources"]) + 1))


def test_a_question_about_something_else_entirely_is_off_topic(stack: Stack) -> None:
    headers = stack.signup()
    job_id = stack.submit(headers, message="Recipe for sourdough bread with rye flour?")["id"]

    job = stack.wait(headers, job_id)

    assert job["answer"] == NOT_IN_BOOK and job["label"] == "off_topic"
    similarity = top_similarity(stack, job_id)
    assert similarity is not None and similarity < 0.25
    admin = stack.client.get(f"/v1/admin/jobs/{job_id}", headers=stack.admin()).get_json()
    assert admin["label"] == "off_topic" and admin["job"]["top_similarity"] == similarity


def test_a_selection_the_answer_cannot_use_is_refused(stack: Stack) -> None:
    headers = stack.signup()
    selection = "Domain randomization varies textures, lighting and physics in simulation."
    job_id = stack.submit(
        headers, message="Which port does the ROS 2 daemon use?", selected_text=selection
    )["id"]

    job = stack.wait(headers, job_id)

    assert job["label"] == "refused" and top_similarity(stack, job_id) is None


def test_a_rating_given_through_the_api_shows_on_the_finished_job(stack: Stack) -> None:
    headers = stack.signup()
    job = stack.wait(headers, stack.submit(headers, message="What is a ROS 2 topic?")["id"])

    rated = stack.client.post(
        f"/v1/chat/jobs/{job['id']}/feedback",
        json={"rating": "down", "reason": "unclear", "comment": "Which topic?"},
        headers=headers,
    )

    assert rated.status_code == 201, rated.get_json()
    again = stack.client.get(f"/v1/chat/jobs/{job['id']}", headers=headers).get_json()
    assert again["feedback"]["reason"] == "unclear" and again["label"] is not None
