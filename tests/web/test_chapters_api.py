"""Submitting chapter jobs: refusals at the door, and the queued job's place among chat jobs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from bench.openai_sim import SimulatorHandle
from tests.support.stack import NewStack, Stack
from tests.web.assertions import assert_problem

TRANSLATE = "/v1/chapters/translate"
PERSONALIZE = "/v1/chapters/personalize"
CHAPTER = "01-ros2/nodes-and-topics.md"


@pytest.fixture(scope="module")
def model_stack(new_stack: NewStack, simulator: SimulatorHandle) -> Iterator[Stack]:
    """The API with a model configured and no worker: chapter jobs stay queued."""
    model: dict[str, Any] = {"openai_api_key": "sk-test", "openai_base_url": f"{simulator.url}/v1"}
    with new_stack("chapters-api", with_worker=False, **model) as running:
        yield running


def _guest(stack: Stack) -> dict[str, str]:
    response = stack.client.post("/v1/auth/guest")
    assert response.status_code == 201, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def _post(stack: Stack, url: str, headers: dict[str, str], **body: Any) -> Any:
    return stack.client.post(url, json=body, headers=headers)


def test_without_a_model_chapter_jobs_are_503_naming_the_setting(idle_stack: Stack) -> None:
    headers = idle_stack.signup()

    for url, body in ((TRANSLATE, {"language": "ur"}), (PERSONALIZE, {})):
        response = _post(idle_stack, url, headers, source=CHAPTER, **body)

        problem = assert_problem(response, 503, "model_not_configured")
        assert problem["setting"] == "OPENAI_API_KEY"
        assert "OPENAI_API_KEY" in problem["detail"]
        assert int(response.headers["Retry-After"]) >= 1


def test_translate_is_queued_as_a_job_readable_at_its_location(model_stack: Stack) -> None:
    headers = model_stack.signup()

    response = _post(model_stack, TRANSLATE, headers, source=CHAPTER, language="ur")

    assert response.status_code == 202, response.get_json()
    job = response.get_json()
    assert response.headers["Location"] == f"/v1/chat/jobs/{job['id']}"
    assert job["task"] == "translate" and job["language"] == "ur"
    assert job["status"] == "queued" and job["answer"] is None
    assert job["message"] == CHAPTER and job["page_url"] == "/ros2/nodes-and-topics"
    assert job["conversation_id"] is None
    read = model_stack.client.get(response.headers["Location"], headers=headers)
    assert read.status_code == 200 and read.get_json() == job


def test_a_page_url_finds_the_same_chapter(model_stack: Stack) -> None:
    headers = model_stack.signup()
    for page_url in ("/ros2/nodes-and-topics", "https://book.example/ros2/nodes-and-topics/#x"):
        response = _post(model_stack, TRANSLATE, headers, page_url=page_url, language="ur")

        assert response.status_code == 202, response.get_json()
        assert response.get_json()["message"] == CHAPTER


@pytest.mark.parametrize(
    "body",
    [
        {"source": "01-ros2/no-such-page.md"},
        {"source": "03-vla/../01-ros2/missing.md"},
        {"page_url": "/no/such/page"},
    ],
)
def test_an_unknown_chapter_is_404_or_422(model_stack: Stack, body: dict[str, str]) -> None:
    headers = model_stack.signup()

    response = _post(model_stack, TRANSLATE, headers, language="ur", **body)

    if ".." in body.get("source", ""):
        assert_problem(response, 422, "validation_error")
    else:
        assert_problem(response, 404, "chapter_not_found")


@pytest.mark.parametrize(
    "body",
    [
        {"source": CHAPTER, "language": "fr"},
        {"source": CHAPTER},
        {"language": "ur"},
        {"source": CHAPTER, "page_url": "/ros2/nodes-and-topics", "language": "ur"},
        {"source": "/etc/passwd", "language": "ur"},
        {"source": "01-ros2/_category_.json", "language": "ur"},
        {"source": CHAPTER, "language": "ur", "extra": 1},
    ],
)
def test_a_malformed_request_is_422(model_stack: Stack, body: dict[str, Any]) -> None:
    response = _post(model_stack, TRANSLATE, model_stack.signup(), **body)

    assert_problem(response, 422, "validation_error")


def test_chapter_jobs_need_a_token(model_stack: Stack) -> None:
    for url in (TRANSLATE, PERSONALIZE):
        assert_problem(model_stack.client.post(url, json={"source": CHAPTER}), 401)


def test_guests_may_translate_but_not_personalize(model_stack: Stack) -> None:
    headers = _guest(model_stack)

    translated = _post(model_stack, TRANSLATE, headers, source=CHAPTER, language="ur")
    personalized = _post(model_stack, PERSONALIZE, headers, source=CHAPTER)

    assert translated.status_code == 202, translated.get_json()
    assert_problem(personalized, 403, "forbidden")


def test_personalize_needs_a_saved_profile(model_stack: Stack) -> None:
    headers = model_stack.signup()

    assert_problem(
        _post(model_stack, PERSONALIZE, headers, source=CHAPTER), 409, "profile_required"
    )


def test_personalize_records_the_profile_fields_it_applies(model_stack: Stack) -> None:
    headers = model_stack.signup()
    profile = {"software_level": "beginner", "hardware": ["jetson"]}
    saved = model_stack.client.put("/v1/me/profile", json=profile, headers=headers)
    assert saved.status_code == 200, saved.get_json()

    response = _post(model_stack, PERSONALIZE, headers, source=CHAPTER)

    assert response.status_code == 202, response.get_json()
    job = response.get_json()
    assert job["task"] == "personalize"
    assert set(job["profile_applied"]) == {"software_level", "hardware"}


def test_another_users_chapter_job_is_404(model_stack: Stack) -> None:
    owner, other = model_stack.signup("owner"), model_stack.signup("other")
    job = _post(model_stack, TRANSLATE, owner, source=CHAPTER, language="ur").get_json()
    location = f"/v1/chat/jobs/{job['id']}"

    assert_problem(model_stack.client.get(location, headers=other), 404)
    assert_problem(model_stack.client.get(f"{location}/events", headers=other), 404)
    assert_problem(model_stack.client.post(f"{location}/cancel", headers=other), 404)
    assert model_stack.client.get(location, headers=owner).status_code == 200


def test_an_idempotency_key_replays_the_job(model_stack: Stack) -> None:
    headers = {**model_stack.signup(), "Idempotency-Key": f"key-{uuid.uuid4().hex}"}
    first = _post(model_stack, TRANSLATE, headers, source=CHAPTER, language="ur").get_json()

    again = _post(model_stack, TRANSLATE, headers, source=CHAPTER, language="ur")
    other = _post(model_stack, TRANSLATE, headers, page_url="/ros2/nodes-and-topics", language="ur")

    assert again.status_code == 202 and again.get_json()["id"] == first["id"]
    assert_problem(other, 422, "idempotency_key_reused")


def test_the_owner_can_cancel_a_queued_chapter_job(model_stack: Stack) -> None:
    headers = model_stack.signup()
    job = _post(model_stack, TRANSLATE, headers, source=CHAPTER, language="ur").get_json()

    cancelled = model_stack.client.post(f"/v1/chat/jobs/{job['id']}/cancel", headers=headers)

    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
