"""Offline answers shaped by the question: definitions, comparisons, how-to steps and code."""

from __future__ import annotations

from common.book.retrieval.passages import Passage
from common.llm.base import AnswerRequest
from common.llm.extractive import ExtractiveAnswerer
from common.llm.extractive.intent import classify


def passage(n: int, text: str) -> Passage:
    """A hand-written retrieved passage."""
    return Passage(f"page-{n}.md", f"Page {n}", f"Section {n}", f"/page-{n}", text, 1.0 / n)


def answer(question: str, *texts: str) -> str:
    """The offline answer to a question over hand-written passages."""
    passages = [passage(n, t) for n, t in enumerate(texts, start=1)]
    return ExtractiveAnswerer().generate(AnswerRequest(question, passages), lambda _d: None).text


SIM_TO_REAL = (
    "Policies trained in simulation meet friction, sensor noise and latency that the simulator "
    "never modelled. This mismatch is called the sim-to-real gap. It is why a policy that walks "
    "in simulation can fall over on the real robot."
)
VLA = "Vision-language-action models map camera images and an instruction to robot actions."


def test_question_kinds_are_read_from_the_wording() -> None:
    assert classify("What is the sim-to-real gap?").kind == "definition"
    assert classify("What is the difference between URDF and SDF?").kind == "comparison"
    assert classify("URDF vs SDF?").sides is not None
    assert classify("How do I write a minimal Python publisher?").kind == "howto"
    assert classify("Why does the robot fall over?").kind == "why"


def test_a_sentence_is_never_quoted_without_the_one_it_refers_to() -> None:
    text = answer("What is the sim-to-real gap?", SIM_TO_REAL, VLA)

    assert text.startswith("Policies trained in simulation meet friction")
    assert "This mismatch is called the sim-to-real gap" in text
    assert "Vision-language-action" not in text  # no trailing sentence on another topic


def test_a_comparison_gets_one_sentence_per_side() -> None:
    urdf = "URDF is the standard ROS format that describes one robot's links and joints."
    sdf = "SDF is Gazebo's native format and can describe whole worlds with many robots."

    text = answer("What is the difference between URDF and SDF?", urdf, VLA, sdf)

    assert "URDF is the standard ROS format" in text and "SDF is Gazebo's native format" in text
    assert "[1]" in text and "[3]" in text and "[2]" not in text


def test_how_to_gives_the_steps_in_order_and_the_code_as_a_fenced_block() -> None:
    publisher = (
        "To write a minimal publisher node in Python, follow these steps:\n\n"
        "1. Create a node class\n2. Create a publisher on a topic\n3. Publish from a timer\n\n"
        "```python\nclass Talker(Node):\n    def __init__(self):\n"
        "        super().__init__('talker')\n```\n"
    )

    text = answer("How do I write a minimal Python publisher?", publisher, VLA)

    assert (
        "1. Create a node class\n2. Create a publisher on a topic\n3. Publish from a timer" in text
    )
    assert "```python\nclass Talker(Node):" in text and text.rstrip().endswith("```")
    assert "[1]" in text


def test_near_duplicates_from_other_passages_are_dropped() -> None:
    wing = "A bird's wing shape generates lift without computation, so the body solves flight."
    repeat = (
        "The shape of a bird's wing generates lift without computation: the body solves flight."
    )

    text = answer("How does a bird's wing shape solve flight?", wing, repeat)

    assert text.count("wing") == 1


def test_a_lead_in_brings_its_list() -> None:
    ros = (
        "ROS 2 supports several languages through client libraries:\n\n"
        "- rclcpp: the C++ client library\n- rclpy: the Python client library\n"
    )

    text = answer("Which client libraries does ROS 2 support?", ros)

    assert text.startswith("ROS 2 supports several languages through client libraries [1]:")
    assert "\n- rclcpp: the C++ client library\n- rclpy: the Python client library [1]" in text
