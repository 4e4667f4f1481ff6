"""The whole chat-job path through a real worker process, Redis and SQLite."""

from __future__ import annotations

from tests.support.sse import read_events
from tests.support.stack import Stack


def test_question_gets_a_grounded_answer_with_citations(stack: Stack) -> None:
    headers = stack.signup()
    submitted = stack.submit(headers, message="What is a ROS 2 node?")
    assert submitted["status"] == "queued"

    job = stack.wait(headers, submitted["id"])

    assert job["status"] == "completed", job
    assert job["model"] == "extractive"
    assert "node" in job["answer"].lower()
    assert "[1]" in job["answer"]
    first = job["citations"][0]
    assert first["n"] == 1
    assert first["source"] == "01-ros2/nodes-and-topics.md"
    assert first["heading"] == "What is a node?"
    assert first["url"].endswith("#what-is-a-node")
    assert job["started_at"] and job["completed_at"] and job["attempts"] == 1


def test_events_stream_the_answer_and_resume_from_last_event_id(stack: Stack) -> None:
    headers = stack.signup()
    job = stack.wait(headers, stack.submit(headers, message="What is a ROS 2 topic?")["id"])

    events = read_events(stack, headers, job["id"])

    kinds = [e["event"] for e in events]
    assert kinds[0] == "status" and kinds[-1] == "done"
    assert "citations" in kinds
    streamed = "".join(e["data"]["text"] for e in events if e["event"] == "delta")
    assert streamed == job["answer"]
    resumed = read_events(stack, headers, job["id"], last_event_id=events[-3]["id"])
    assert [e["id"] for e in resumed] == [e["id"] for e in events[-2:]]


def test_another_users_job_is_not_found(stack: Stack) -> None:
    owner, stranger = stack.signup("owner"), stack.signup("stranger")
    job_id = stack.submit(owner, message="What is Gazebo?")["id"]

    for path in (f"/v1/chat/jobs/{job_id}", f"/v1/chat/jobs/{job_id}/events"):
        response = stack.client.get(path, headers=stranger)
        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"
    assert stack.client.post(f"/v1/chat/jobs/{job_id}/cancel", headers=stranger).status_code == 404
