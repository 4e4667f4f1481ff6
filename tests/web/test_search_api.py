"""POST /v1/search, answered by the worker that owns the index."""

from __future__ import annotations

from tests.support.stack import Stack
from tests.web.assertions import assert_problem


def test_search_returns_the_best_passages(stack: Stack) -> None:
    response = stack.client.post(
        "/v1/search", json={"query": "What is a ROS 2 node?", "k": 3}, headers=stack.signup()
    )

    assert response.status_code == 200
    body = response.get_json()
    assert body["object"] == "list" and len(body["data"]) == 3
    first = body["data"][0]
    assert set(first) == {"book", "source", "heading", "title", "url", "text", "score"}
    assert (first["source"], first["heading"]) == ("01-ros2/nodes-and-topics.md", "What is a node?")


def test_search_can_be_limited_to_a_folder(stack: Stack) -> None:
    response = stack.client.post(
        "/v1/search",
        json={"query": "What is a ROS 2 node?", "path_prefix": "02-simulation"},
        headers=stack.signup(),
    )

    sources = {item["source"] for item in response.get_json()["data"]}
    assert sources and all(source.startswith("02-simulation/") for source in sources)


def test_search_needs_a_token_and_a_query(stack: Stack) -> None:
    assert_problem(stack.client.post("/v1/search", json={"query": "node"}), 401, "unauthorized")
    response = stack.client.post("/v1/search", json={"query": ""}, headers=stack.signup())
    assert_problem(response, 422, "validation_error")
