"""Follow-ups made standalone offline: pronouns resolved, subjects carried, new subjects kept."""

from __future__ import annotations

import pytest

from common.book.retrieval.followups import is_follow_up, references, standalone_question
from common.book.retrieval.guardrail import Vocabulary

BOOK = [
    "Gazebo is a robot simulator. Install Gazebo with apt and launch it with a launch file.",
    "Isaac ROS Visual SLAM gives humanoid navigation a map and a pose from stereo cameras.",
    "LiDAR point clouds are filtered and downsampled before obstacle detection.",
    "A ROS 2 service answers one request; an action reports feedback on a long goal.",
    "The navigation stack has parameters: inflation radius, planner frequency and more.",
]
LIDAR = ("How are LiDAR point clouds filtered?", "They are downsampled first [1].")


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return Vocabulary(BOOK)


def test_a_pronoun_is_replaced_by_the_previous_subject(vocabulary: Vocabulary) -> None:
    history = [("What is Gazebo?", "A robot simulator [1].")]
    assert standalone_question("And how do I launch it?", history, vocabulary) == (
        "And how do I launch Gazebo?"
    )


def test_a_new_subject_is_searched_on_its_own(vocabulary: Vocabulary) -> None:
    question = "What does Isaac ROS Visual SLAM provide for humanoid navigation?"
    assert not is_follow_up(question, vocabulary)
    assert standalone_question(question, [LIDAR], vocabulary) == question


def test_a_short_question_without_terms_of_its_own_carries_the_subject(
    vocabulary: Vocabulary,
) -> None:
    history = [("How does the navigation stack plan paths?", "With a global planner [1].")]
    rewritten = standalone_question("Which parameters matter most?", history, vocabulary)
    assert rewritten == "Which parameters matter most? (navigation stack plan paths)"


def test_a_possessive_keeps_its_meaning(vocabulary: Vocabulary) -> None:
    history = [("What is a ROS 2 service?", "One request, one response [1].")]
    assert standalone_question("What are its limits?", history, vocabulary) == (
        "What are ROS 2 service's limits?"
    )


def test_a_chain_of_follow_ups_keeps_the_first_subject(vocabulary: Vocabulary) -> None:
    history = [("What is Gazebo?", "A simulator [1]."), ("How do I install it?", "With apt [1].")]
    assert "Gazebo" in standalone_question("Why is that?", history, vocabulary)


def test_a_relative_that_is_not_a_reference() -> None:
    assert references("Which node that publishes LiDAR data runs first?") == []
    assert references("Why is that?") == [2]
    assert references("How does this work?") == [2]


def test_without_history_nothing_changes(vocabulary: Vocabulary) -> None:
    assert standalone_question("How do I launch it?", [], vocabulary) == "How do I launch it?"
