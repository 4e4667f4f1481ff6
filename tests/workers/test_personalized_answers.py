"""Reader profiles shape answers: the model's prompt through the real worker, and offline."""

from __future__ import annotations

from typing import Any

from bench.openai_sim import SimulatorHandle
from common.accounts.profiles import ReaderProfileIn
from common.llm.personalize import profile_guidance
from tests.support.stack import Stack

QUESTION = "What is a ROS 2 node?"
BEGINNER: dict[str, Any] = {
    "software_level": "beginner",
    "programming_languages": ["Python"],
    "robotics_experience": "none",
    "hardware": ["none"],
    "preferred_language": "ur",
}
ADVANCED: dict[str, Any] = {
    "software_level": "advanced",
    "programming_languages": ["C++", "Rust"],
    "robotics_experience": "ros2",
    "hardware": ["rtx_workstation", "jetson"],
    "learning_goal": "Deploy a walking policy on a humanoid",
}


def _reader(stack: Stack, profile: dict[str, Any] | None) -> dict[str, str]:
    headers = stack.signup()
    if profile is not None:
        response = stack.client.put("/v1/me/profile", json=profile, headers=headers)
        assert response.status_code == 200, response.get_json()
    return headers


def _ask(stack: Stack, headers: dict[str, str], question: str = QUESTION) -> dict[str, Any]:
    job = stack.wait(headers, stack.submit(headers, message=question)["id"])
    assert job["status"] == "completed", job
    return job


def _prompts(sim: SimulatorHandle) -> list[str]:
    """The system prompt of each chat completion the simulator received, in order."""
    records = [r for r in sim.log() if r["endpoint"] == "/v1/chat/completions"]
    return [r["messages"][0]["content"] for r in records]


def test_beginner_and_advanced_readers_get_differently_pitched_prompts(
    openai_stack: Stack, sim: SimulatorHandle
) -> None:
    beginner = _ask(openai_stack, _reader(openai_stack, BEGINNER))
    advanced = _ask(openai_stack, _reader(openai_stack, ADVANCED))
    plain = _ask(openai_stack, _reader(openai_stack, None))

    first, second, third = _prompts(sim)
    assert "beginner programmer" in first and "advanced programmer" not in first
    assert "new to robotics" in first and "Write the answer in Urdu" in first
    assert "Gazebo on a laptop" in first
    assert "advanced programmer" in second and "beginner programmer" not in second
    assert "already uses ROS 2" in second and "C++, Rust" in second
    assert "NVIDIA RTX GPU" in second and "Jetson kit" in second
    assert '"Deploy a walking policy on a humanoid"' in second
    assert "Urdu" not in second
    # A personalized prompt is the plain one with the reader's guidance before the passages.
    assert "About the reader" not in third
    for profile, prompt in ((BEGINNER, first), (ADVANCED, second)):
        guidance = profile_guidance(ReaderProfileIn.model_validate(profile)).text
        assert prompt == third.replace("\n\nPassages:", f"\n\n{guidance}\n\nPassages:", 1)
    assert beginner["profile_applied"] == [
        "software_level",
        "programming_languages",
        "robotics_experience",
        "hardware",
        "preferred_language",
    ]
    assert advanced["profile_applied"] == [
        "software_level",
        "programming_languages",
        "robotics_experience",
        "hardware",
        "learning_goal",
    ]
    assert plain["profile_applied"] is None


def test_offline_a_beginner_gets_a_pointer_to_the_introduction(stack: Stack) -> None:
    beginner = _ask(stack, _reader(stack, {"software_level": "beginner"}))
    advanced = _ask(stack, _reader(stack, {"software_level": "advanced"}))

    intro = next(c for c in beginner["citations"] if c["source"] == "intro.md")
    pointer = f"Start with the book's introduction, “{intro['title']}” [{intro['n']}]."
    assert beginner["answer"].endswith(pointer)
    assert beginner["profile_applied"] == ["software_level"]
    assert "introduction" not in advanced["answer"]
    assert advanced["answer"] == beginner["answer"].removesuffix(" New to this? " + pointer)
    assert advanced["profile_applied"] == []


def test_offline_a_workstation_owner_is_pointed_at_the_gpu_simulator(stack: Stack) -> None:
    question = "Which simulator should I choose?"
    plain = _ask(stack, _reader(stack, None), question)
    rtx = _ask(stack, _reader(stack, {"hardware": ["rtx_workstation"]}), question)

    gpu_sentence = "GPU-accelerated physics"
    assert gpu_sentence in rtx["answer"] and gpu_sentence not in plain["answer"]
    assert "Gazebo is an open-source robot simulator" in plain["answer"]
    assert "Gazebo is an open-source robot simulator" not in rtx["answer"]
    assert rtx["profile_applied"] == ["hardware"]
    assert plain["profile_applied"] is None
