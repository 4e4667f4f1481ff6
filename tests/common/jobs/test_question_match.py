"""The vetoes that keep near-identical questions with other meanings apart."""

from __future__ import annotations

import pytest

from common.jobs.question_match import veto


@pytest.mark.parametrize(
    ("a", "b", "reason"),
    [
        ("Does ROS 2 need a master?", "Does ROS 1 need a master?", "numbers"),
        ("Install on Ubuntu 22.04?", "Install on Ubuntu 20.04?", "numbers"),
        ("Why use QoS reliability?", "Why not use QoS reliability?", "negation"),
        ("When can't I use a service?", "When can I use a service?", "negation"),
        ("What is the maximum rate?", "What is the minimum rate?", "opposite"),
        ("How do I install Gazebo?", "How do I uninstall Gazebo?", "opposite"),
        ("Convert quaternion to Euler?", "Convert Euler to quaternion?", "order"),
        ("Is Gazebo faster than Isaac Sim?", "Is Isaac Sim faster than Gazebo?", "order"),
    ],
)
def test_questions_that_differ_in_one_decisive_way_are_told_apart(
    a: str, b: str, reason: str
) -> None:
    assert veto(a, b) == reason
    assert veto(b, a) == reason


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What is a ROS 2 node?", "what is a ros 2 node"),
        ("How do I create a publisher in Python?", "How to create a publisher in Python?"),
        ("What is the difference between ROS 1 and ROS 2?", "How is ROS 2 different from ROS 1?"),
        ("What is the maximum rate?", "What is the maximum rate, and the minimum?"),
    ],
)
def test_paraphrases_pass(a: str, b: str) -> None:
    assert veto(a, b) is None
