"""GET/PUT /v1/me/profile: the reader's background, validated, per user, not for guests."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from common.platform.db import session_scope
from common.platform.models import ReaderProfile
from tests.support.stack import Stack
from tests.web.assertions import assert_problem

URL = "/v1/me/profile"
FULL = {
    "software_level": "beginner",
    "programming_languages": ["Python", "C++"],
    "robotics_experience": "none",
    "hardware": ["rtx_workstation", "jetson"],
    "learning_goal": "Build a  humanoid\nthat tidies my desk",
    "preferred_language": "ur",
}


def _guest(stack: Stack) -> dict[str, str]:
    """A new guest's Authorization header."""
    response = stack.client.post("/v1/auth/guest")
    assert response.status_code == 201, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def _errors(body: dict[str, Any]) -> dict[str, str]:
    return {".".join(e["loc"]): e["msg"] for e in body["errors"]}


def test_a_reader_without_a_profile_gets_the_defaults(idle_stack: Stack) -> None:
    response = idle_stack.client.get(URL, headers=idle_stack.signup())

    assert response.status_code == 200
    assert response.get_json() == {
        "software_level": None,
        "programming_languages": [],
        "robotics_experience": None,
        "hardware": [],
        "learning_goal": None,
        "preferred_language": "en",
        "object": "reader_profile",
        "exists": False,
        "updated_at": None,
    }


def test_put_saves_the_profile_and_get_reads_it_back(idle_stack: Stack) -> None:
    headers = idle_stack.signup()

    saved = idle_stack.client.put(URL, json=FULL, headers=headers)
    shown = idle_stack.client.get(URL, headers=headers)

    assert saved.status_code == 200, saved.get_json()
    assert shown.get_json() == saved.get_json()
    body = shown.get_json()
    assert body["exists"] is True and body["updated_at"]
    assert body["learning_goal"] == "Build a humanoid that tidies my desk"
    assert {k: body[k] for k in FULL if k != "learning_goal"} == {
        k: v for k, v in FULL.items() if k != "learning_goal"
    }


def test_put_replaces_the_whole_profile(idle_stack: Stack) -> None:
    headers = idle_stack.signup()
    idle_stack.client.put(URL, json=FULL, headers=headers)

    response = idle_stack.client.put(URL, json={"software_level": "advanced"}, headers=headers)

    body = response.get_json()
    assert response.status_code == 200
    assert body["software_level"] == "advanced"
    assert body["hardware"] == [] and body["programming_languages"] == []
    assert body["preferred_language"] == "en" and body["learning_goal"] is None
    assert idle_stack.client.get(URL, headers=headers).get_json() == body
    user_id = uuid.UUID(idle_stack.client.get("/v1/me", headers=headers).get_json()["id"])
    with session_scope(idle_stack.resources.sessions) as session:
        row = session.get(ReaderProfile, user_id)
        assert row is not None and row.hardware == [] and row.robotics_experience is None


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"software_level": "expert"}, "software_level", "'beginner', 'intermediate'"),
        ({"robotics_experience": "lots"}, "robotics_experience", "'none', 'some' or 'ros2'"),
        ({"hardware": ["laptop"]}, "hardware.0", "'rtx_workstation'"),
        ({"hardware": ["jetson", "jetson"]}, "hardware", "must not repeat"),
        ({"hardware": ["none", "jetson"]}, "hardware", '"none" cannot be combined'),
        ({"preferred_language": "fr"}, "preferred_language", "'en' or 'ur'"),
        ({"learning_goal": "x" * 501}, "learning_goal", "at most 500 characters"),
        ({"programming_languages": ["Python"] * 11}, "programming_languages", "at most 10"),
        ({"programming_languages": ["x" * 33]}, "programming_languages", "1-32 letters"),
        ({"programming_languages": ["Python", "python"]}, "programming_languages", "repeat"),
        ({"programming_languages": ["<script>"]}, "programming_languages", "1-32 letters"),
        ({"programming_languages": "Python"}, "programming_languages", "valid list"),
        ({"favourite_robot": "R2-D2"}, "favourite_robot", "Extra inputs are not permitted"),
    ],
)
def test_bad_values_are_422_naming_the_field(
    idle_stack: Stack, body: dict[str, Any], field: str, message: str
) -> None:
    headers = idle_stack.signup()

    response = idle_stack.client.put(URL, json=body, headers=headers)

    problem = assert_problem(response, 422, "validation_error")
    errors = _errors(problem)
    assert field in errors, errors
    assert message in errors[field], errors
    assert idle_stack.client.get(URL, headers=headers).get_json()["exists"] is False


def test_a_body_that_is_not_an_object_is_422(idle_stack: Stack) -> None:
    response = idle_stack.client.put(URL, json=["beginner"], headers=idle_stack.signup())

    assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize("method", ["get", "put"])
def test_guests_have_no_profile(idle_stack: Stack, method: str) -> None:
    response = getattr(idle_stack.client, method)(URL, json=FULL, headers=_guest(idle_stack))

    assert_problem(response, 403, "forbidden")


@pytest.mark.parametrize("method", ["get", "put"])
def test_without_a_token_it_is_401_even_with_a_bad_body(idle_stack: Stack, method: str) -> None:
    response = getattr(idle_stack.client, method)(URL, json={"software_level": "expert"})

    assert_problem(response, 401, "unauthorized")


def test_one_readers_put_leaves_another_readers_profile_untouched(idle_stack: Stack) -> None:
    ada, bob = idle_stack.signup("ada"), idle_stack.signup("bob")
    idle_stack.client.put(URL, json=FULL, headers=ada)
    before = idle_stack.client.get(URL, headers=ada).get_json()

    idle_stack.client.put(URL, json={"software_level": "advanced"}, headers=bob)

    assert idle_stack.client.get(URL, headers=ada).get_json() == before
    assert idle_stack.client.get(URL, headers=bob).get_json()["software_level"] == "advanced"
