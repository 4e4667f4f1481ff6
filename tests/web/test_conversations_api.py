"""Conversations listed and read back after a real worker answered their questions."""

from __future__ import annotations

from typing import Any

from tests.support.stack import Stack
from tests.web.assertions import assert_problem

CONVERSATIONS = "/v1/conversations"


def _ask(
    stack: Stack, headers: dict[str, str], message: str, conversation_id: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message}
    if conversation_id is not None:
        body["conversation_id"] = conversation_id
    job = stack.wait(headers, stack.submit(headers, **body)["id"])
    assert job["status"] == "completed", job
    return job


def _list(stack: Stack, headers: dict[str, str], query: str = "") -> dict[str, Any]:
    response = stack.client.get(f"{CONVERSATIONS}{query}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def test_a_two_turn_conversation_reads_back_in_order(stack: Stack) -> None:
    headers = stack.signup()
    first = _ask(stack, headers, "What is a ROS 2 node?")
    second = _ask(stack, headers, "What is a ROS 2 topic?", first["conversation_id"])
    conversation_id = first["conversation_id"]

    listing = _list(stack, headers)
    detail = stack.client.get(f"{CONVERSATIONS}/{conversation_id}", headers=headers)

    assert listing["object"] == "list"
    assert listing["has_more"] is False
    assert [c["id"] for c in listing["data"]] == [conversation_id]
    assert listing["first_id"] == listing["last_id"] == conversation_id
    summary = listing["data"][0]
    assert summary["object"] == "conversation"
    assert summary["title"] == "What is a ROS 2 node?"
    assert "messages" not in summary

    assert detail.status_code == 200
    body = detail.get_json()
    assert body["id"] == conversation_id
    assert body["title"] == summary["title"]
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert [m["job_id"] for m in messages] == [first["id"]] * 2 + [second["id"]] * 2
    assert [m["content"] for m in messages] == [
        first["message"],
        first["answer"],
        second["message"],
        second["answer"],
    ]
    assert all(m["status"] == "completed" for m in messages)
    assert messages[0]["citations"] == [] and messages[2]["citations"] == []
    assert first["citations"] and second["citations"]
    assert messages[1]["citations"] == first["citations"]
    assert messages[3]["citations"] == second["citations"]
    assert "topic" in messages[3]["content"].lower()


def test_conversations_page_with_limit_and_after(stack: Stack) -> None:
    headers = stack.signup()
    older = _ask(stack, headers, "What is Gazebo?")["conversation_id"]
    newer = _ask(stack, headers, "What is URDF?")["conversation_id"]

    first_page = _list(stack, headers, "?limit=1")
    second_page = _list(stack, headers, f"?limit=1&after={first_page['last_id']}")
    everything = _list(stack, headers, "?limit=2")

    assert [c["id"] for c in first_page["data"]] == [newer]
    assert first_page["has_more"] is True
    assert first_page["first_id"] == first_page["last_id"] == newer
    assert [c["id"] for c in second_page["data"]] == [older]
    assert second_page["has_more"] is False
    assert [c["id"] for c in everything["data"]] == [newer, older]
    assert everything["has_more"] is False


def test_a_follow_up_moves_the_conversation_to_the_top(stack: Stack) -> None:
    headers = stack.signup()
    older = _ask(stack, headers, "What is a node?")["conversation_id"]
    newer = _ask(stack, headers, "What is a topic?")["conversation_id"]

    _ask(stack, headers, "And how do I launch one?", older)

    assert [c["id"] for c in _list(stack, headers)["data"]] == [older, newer]


def test_a_new_user_has_no_conversations(stack: Stack) -> None:
    listing = _list(stack, stack.signup())

    assert listing == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


def test_another_users_conversation_is_not_found(stack: Stack) -> None:
    owner, stranger = stack.signup("owner"), stack.signup("stranger")
    conversation_id = _ask(stack, owner, "What is a ROS 2 service?")["conversation_id"]

    detail = stack.client.get(f"{CONVERSATIONS}/{conversation_id}", headers=stranger)
    as_cursor = stack.client.get(f"{CONVERSATIONS}?after={conversation_id}", headers=stranger)

    assert_problem(detail, 404, "not_found")
    assert_problem(as_cursor, 404, "not_found")
    assert _list(stack, stranger)["data"] == []


def test_conversations_need_a_token(stack: Stack) -> None:
    assert_problem(stack.client.get(CONVERSATIONS), 401, "unauthorized")


def test_a_conversation_can_be_renamed(idle_stack: Stack) -> None:
    headers = idle_stack.signup()
    conversation_id = idle_stack.submit(headers, message="What is a node?")["conversation_id"]
    url = f"{CONVERSATIONS}/{conversation_id}"

    response = idle_stack.client.patch(url, json={"title": "  Nodes  "}, headers=headers)

    assert response.status_code == 200
    assert response.get_json()["title"] == "Nodes"
    assert idle_stack.client.get(url, headers=headers).get_json()["title"] == "Nodes"


def test_a_rename_needs_a_title(idle_stack: Stack) -> None:
    headers = idle_stack.signup()
    conversation_id = idle_stack.submit(headers, message="What is a node?")["conversation_id"]
    url = f"{CONVERSATIONS}/{conversation_id}"

    for body in ({"title": ""}, {"title": "x" * 201}, {}, {"title": "ok", "extra": 1}):
        assert_problem(idle_stack.client.patch(url, json=body, headers=headers), 422)


def test_deleting_a_conversation_removes_its_jobs_and_streams(idle_stack: Stack) -> None:
    headers = idle_stack.signup()
    job = idle_stack.submit(headers, message="What is a node?")
    kept = idle_stack.submit(headers, message="What is a topic?")
    url = f"{CONVERSATIONS}/{job['conversation_id']}"

    response = idle_stack.client.delete(url, headers=headers)

    assert response.status_code == 204
    assert_problem(idle_stack.client.get(url, headers=headers), 404, "not_found")
    jobs = "/v1/chat/jobs"
    assert_problem(idle_stack.client.get(f"{jobs}/{job['id']}", headers=headers), 404)
    assert not idle_stack.resources.redis.exists(f"bookchat:job:{job['id']}:events")
    assert idle_stack.client.get(f"{jobs}/{kept['id']}", headers=headers).status_code == 200
    assert [c["id"] for c in _list(idle_stack, headers)["data"]] == [kept["conversation_id"]]
    assert_problem(idle_stack.client.delete(url, headers=headers), 404, "not_found")
