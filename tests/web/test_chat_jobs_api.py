"""Submitting, reading and cancelling chat jobs against an API with no worker (jobs stay queued)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.sse import read_events
from tests.support.stack import Stack
from tests.web.assertions import assert_problem

JOBS = "/v1/chat/jobs"


def _key() -> dict[str, str]:
    return {"Idempotency-Key": f"key-{uuid.uuid4().hex}"}


def _post(stack: Stack, headers: dict[str, str], **body: Any) -> Any:
    return stack.client.post(JOBS, json=body, headers=headers)


def test_submit_is_accepted_with_location_and_retry_after(idle_stack: Stack) -> None:
    headers = idle_stack.signup()

    response = _post(
        idle_stack,
        headers,
        message="  What is a ROS 2 node?  ",
        selected_text="",
        page_url="https://book.example/ros2/nodes",
    )

    assert response.status_code == 202
    job = response.get_json()
    assert response.headers["Location"] == f"{JOBS}/{job['id']}"
    assert int(response.headers["Retry-After"]) >= 1
    assert "Idempotent-Replayed" not in response.headers
    assert job["object"] == "chat.job"
    assert job["status"] == "queued"
    assert job["message"] == "What is a ROS 2 node?"
    assert job["selected_text"] is None
    assert job["page_url"] == "https://book.example/ros2/nodes"
    assert job["answer"] is None and job["citations"] == [] and job["error"] is None
    assert job["attempts"] == 0 and job["started_at"] is None and job["completed_at"] is None
    assert uuid.UUID(job["conversation_id"])


def test_location_reads_the_same_job(idle_stack: Stack) -> None:
    headers = idle_stack.signup()
    response = _post(idle_stack, headers, message="What is a topic?")

    read = idle_stack.client.get(response.headers["Location"], headers=headers)

    assert read.status_code == 200
    assert read.get_json() == response.get_json()


def test_submit_needs_a_token(idle_stack: Stack) -> None:
    response = idle_stack.client.post(JOBS, json={"message": "hello"})

    assert_problem(response, 401, "unauthorized")


def test_same_key_and_body_replays_the_job(idle_stack: Stack) -> None:
    headers = {**idle_stack.signup(), **_key()}
    first = _post(idle_stack, headers, message="What is a service?")

    again = _post(idle_stack, headers, message="What is a service?")

    assert again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Location"] == first.headers["Location"]


def test_replay_ignores_insignificant_whitespace(idle_stack: Stack) -> None:
    headers = {**idle_stack.signup(), **_key()}
    first = _post(idle_stack, headers, message="What is a service?")

    again = _post(idle_stack, headers, message="  What is a service?\n")

    assert again.get_json()["id"] == first.get_json()["id"]


def test_same_key_with_another_body_is_422(idle_stack: Stack) -> None:
    headers = {**idle_stack.signup(), **_key()}
    _post(idle_stack, headers, message="What is a service?")

    response = _post(idle_stack, headers, message="What is an action?")

    assert_problem(response, 422, "idempotency_key_reused")


def test_idempotency_keys_are_per_user(idle_stack: Stack) -> None:
    key = _key()
    first = _post(idle_stack, {**idle_stack.signup("a"), **key}, message="What is a launch file?")

    other = _post(idle_stack, {**idle_stack.signup("b"), **key}, message="What is a launch file?")

    assert other.status_code == 202
    assert "Idempotent-Replayed" not in other.headers
    assert other.get_json()["id"] != first.get_json()["id"]
    assert other.get_json()["conversation_id"] != first.get_json()["conversation_id"]


def test_without_a_key_each_submit_is_a_new_job(idle_stack: Stack) -> None:
    headers = idle_stack.signup()

    ids = {_post(idle_stack, headers, message="Same question").get_json()["id"] for _ in range(2)}

    assert len(ids) == 2


def test_empty_idempotency_key_is_422(idle_stack: Stack) -> None:
    headers = {**idle_stack.signup(), "Idempotency-Key": ""}

    response = _post(idle_stack, headers, message="hello")

    assert_problem(response, 422, "validation_error")


def test_another_users_conversation_is_not_found(idle_stack: Stack) -> None:
    owner, stranger = idle_stack.signup("owner"), idle_stack.signup("stranger")
    conversation_id = idle_stack.submit(owner, message="What is URDF?")["conversation_id"]

    response = _post(idle_stack, stranger, message="Tell me more", conversation_id=conversation_id)

    assert_problem(response, 404, "not_found")


def test_unknown_conversation_is_not_found(idle_stack: Stack) -> None:
    response = _post(
        idle_stack, idle_stack.signup(), message="Hello?", conversation_id=str(uuid.uuid4())
    )

    assert_problem(response, 404, "not_found")


def test_follow_up_stays_in_the_conversation(idle_stack: Stack) -> None:
    headers = idle_stack.signup()
    first = idle_stack.submit(headers, message="What is a node?")

    follow_up = idle_stack.submit(
        headers, message="And a topic?", conversation_id=first["conversation_id"]
    )

    assert follow_up["conversation_id"] == first["conversation_id"]
    assert follow_up["id"] != first["id"]
    conversation = idle_stack.client.get(
        f"/v1/conversations/{first['conversation_id']}", headers=headers
    ).get_json()
    assert [m["content"] for m in conversation["messages"] if m["role"] == "user"] == [
        "What is a node?",
        "And a topic?",
    ]


def test_cancel_a_queued_job_twice(idle_stack: Stack) -> None:
    headers = idle_stack.signup()
    job_id = idle_stack.submit(headers, message="Cancel me")["id"]

    first = idle_stack.client.post(f"{JOBS}/{job_id}/cancel", headers=headers)
    second = idle_stack.client.post(f"{JOBS}/{job_id}/cancel", headers=headers)

    assert first.status_code == 200
    assert first.get_json()["status"] == "cancelled"
    assert first.get_json()["completed_at"]
    assert second.status_code == 200
    assert second.get_json() == first.get_json()
    read = idle_stack.client.get(f"{JOBS}/{job_id}", headers=headers).get_json()
    assert read["status"] == "cancelled"


def test_cancelled_job_stream_ends_with_done(idle_stack: Stack) -> None:
    headers = idle_stack.signup()
    job_id = idle_stack.submit(headers, message="Stream then cancel")["id"]
    idle_stack.client.post(f"{JOBS}/{job_id}/cancel", headers=headers)

    events = read_events(idle_stack, headers, job_id)

    assert events[0] == {"id": events[0]["id"], "event": "status", "data": {"status": "queued"}}
    assert events[-1]["event"] == "done"
    assert events[-1]["data"] == {"status": "cancelled"}


def test_cancelled_job_stream_resumes_after_the_last_event(idle_stack: Stack) -> None:
    headers = idle_stack.signup()
    job_id = idle_stack.submit(headers, message="Resume a cancelled stream")["id"]
    idle_stack.client.post(f"{JOBS}/{job_id}/cancel", headers=headers)
    events = read_events(idle_stack, headers, job_id)

    resumed = read_events(idle_stack, headers, job_id, last_event_id=events[0]["id"])

    assert resumed == events[1:]


def test_long_poll_on_a_queued_job_returns_it_still_queued(idle_stack: Stack) -> None:
    headers = idle_stack.signup()
    job_id = idle_stack.submit(headers, message="Will anyone answer?")["id"]

    response = idle_stack.client.get(f"{JOBS}/{job_id}?wait=1", headers=headers)

    assert response.status_code == 200
    assert response.get_json()["status"] == "queued"


def test_long_poll_on_a_cancelled_job_returns_at_once(idle_stack: Stack) -> None:
    headers = idle_stack.signup()
    job_id = idle_stack.submit(headers, message="Already over")["id"]
    idle_stack.client.post(f"{JOBS}/{job_id}/cancel", headers=headers)

    response = idle_stack.client.get(f"{JOBS}/{job_id}?wait=30", headers=headers)

    assert response.get_json()["status"] == "cancelled"


def test_cancelling_a_completed_job_is_409(stack: Stack) -> None:
    """Needs the answering `stack`: a job can only complete where a worker runs."""
    headers = stack.signup()
    job = stack.wait(headers, stack.submit(headers, message="What is a ROS 2 node?")["id"])
    assert job["status"] == "completed", job

    response = stack.client.post(f"{JOBS}/{job['id']}/cancel", headers=headers)

    assert_problem(response, 409, "job_not_cancellable")
    assert stack.client.get(f"{JOBS}/{job['id']}", headers=headers).get_json() == job


def test_anonymous_invalid_submit_is_401_not_422(idle_stack: Stack) -> None:
    response = idle_stack.client.post(JOBS, json={"message": ""})

    assert_problem(response, 401, "unauthorized")
