"""How the offline answerer matches a question to the book's words: headings, stems, acronyms."""

from __future__ import annotations

from common.book.retrieval.passages import Passage
from common.llm.base import AnswerRequest
from common.llm.extractive import ExtractiveAnswerer
from common.llm.extractive.compose import has_term
from common.llm.extractive.units import clean, passage_units, text_terms


def passage(n: int, heading_path: tuple[str, ...], text: str) -> Passage:
    """A hand-written retrieved passage under a heading path."""
    return Passage(
        f"page-{n}.md", f"Page {n}", heading_path[-1], f"/page-{n}", text, 1.0 / n, heading_path
    )


def answer(question: str, *passages: Passage) -> str:
    """The offline answer to a question over hand-written passages."""
    request = AnswerRequest(question, list(passages))
    return ExtractiveAnswerer().generate(request, lambda _d: None).text


def test_cleaning_keeps_identifiers_and_drops_paired_emphasis() -> None:
    assert clean("**Bold** and _em_ text") == "Bold and em text"
    assert clean("`max_step_size`: smaller is slower") == "max_step_size: smaller is slower"
    assert clean("**A* Algorithm**") == "A* Algorithm"


def test_a_glued_version_number_matches_its_spaced_form() -> None:
    assert {"ros", "2", "ros2"} <= text_terms("ROS2 Humble Hawksbill")


def test_stem_variants_of_one_word_match() -> None:
    assert has_term("accuraci", frozenset({"accur", "slower"}))
    assert not has_term("acc", frozenset({"accur"}))


def test_the_heading_says_what_an_unnamed_passage_is_about() -> None:
    ccd = passage(
        1,
        ("Inverse Kinematics", "Cyclic Coordinate Descent (CCD)"),
        "An iterative method that adjusts each joint angle in turn to approach the target.",
    )
    summary = passage(
        2,
        ("Inverse Kinematics", "Summary"),
        "Through these exercises you practise solving inverse kinematics for joint angles.",
    )

    text = answer("How does cyclic coordinate descent solve inverse kinematics?", summary, ccd)

    assert "An iterative method that adjusts each joint angle" in text


def test_heading_words_alone_do_not_stretch_the_quoted_paragraph() -> None:
    topics = passage(
        1,
        ("Communication", "Topics"),
        "Nodes exchange data in many ways. A topic is a named channel that carries messages "
        "between publishers and subscribers. Publishers never wait for a reply.",
    )

    text = answer("What is a topic channel?", topics)

    assert text == (
        "A topic is a named channel that carries messages between publishers and subscribers [1]."
    )


def test_the_paragraph_before_the_best_sentence_comes_with_it_when_it_matches() -> None:
    zmp = passage(
        1,
        ("Physics of Walking", "Zero Moment Point (ZMP)"),
        "ZMP is a critical concept in bipedal robotics. It is the point where the ground "
        "reaction force acts so that the moment about it is zero. For stable walking, the ZMP "
        "must remain within the support polygon.",
    )

    text = answer("What is the zero moment point and where must it stay to walk stably?", zmp)

    assert text.startswith("ZMP is a critical concept in bipedal robotics. It is the point")
    assert text.endswith("within the support polygon [1].")


PLANNERS = (
    "Local planners focus on immediate navigation while considering robot dynamics:\n\n"
    "**Dynamic Window Approach (DWA)**\n"
    "- Considers robot kinematics\n"
    "- Suitable for differential drive robots\n\n"
    "**Timed Elastic Band (TEB)**\n"
    "- Creates smooth trajectories\n"
    "- Good for car-like vehicles\n"
)


def test_a_bold_line_above_a_list_names_it() -> None:
    units = passage_units(PLANNERS)

    labels = [u.text for u in units if u.label]

    assert labels == ["Dynamic Window Approach (DWA):", "Timed Elastic Band (TEB):"]


def test_a_named_list_comes_with_its_name_and_the_sentence_introducing_all_of_them() -> None:
    planners = passage(1, ("Path Planning", "Local Planning"), PLANNERS)

    text = answer("Which local planner is good for car-like vehicles?", planners)

    assert text.startswith(
        "Local planners focus on immediate navigation while considering robot dynamics [1]:\n"
        "Timed Elastic Band (TEB):\n- Creates smooth trajectories\n- Good for car-like vehicles [1]"
    )


def test_a_line_of_navigation_links_is_not_quoted() -> None:
    units = passage_units("Nodes talk over topics.\n\n[← Syllabus](./syllabus) | [Next →](./next)")

    assert [u.text for u in units] == ["Nodes talk over topics."]


def test_the_lesson_is_preferred_to_the_exercise_that_practises_it() -> None:
    lab = Passage(
        "module-2/physics-lab-exercises.md",
        "Week 3 Exercises",
        "Instructions",
        "/lab",
        "- Vary the friction of the wheels to see how the robot slips\n- Record the results\n",
        1.0,
        ("Week 3 Exercises", "Exercise 2", "Instructions"),
    )
    lesson = passage(
        2, ("Physics", "Friction"), "Friction decides whether the wheels of a robot grip or slip."
    )

    text = answer("Why do the wheels of a robot slip?", lab, lesson)

    assert text.startswith("Friction decides whether the wheels of a robot grip or slip [2].")


def test_another_section_joins_on_its_own_words_not_its_heading() -> None:
    bullet = passage(
        1,
        ("Physics Engines in Gazebo", "Bullet"),
        "- Pros: Fast, good for complex collision detection\n- Cons: Less mature, some stability "
        "issues\n- Best for: Games, rapid prototyping\n",
    )
    ode = passage(
        2,
        ("Physics Engines in Gazebo", "ODE"),
        "- Pros: Mature, stable, widely used\n- Cons: Can be slow for complex scenes\n",
    )

    text = answer("What are the pros and cons of the Bullet physics engine in Gazebo?", bullet, ode)

    assert "Pros: Fast, good for complex collision detection" in text
    assert "[2]" not in text


def test_a_lead_in_stands_for_the_code_it_introduces() -> None:
    friction = passage(
        1,
        ("Tuning Physics Parameters", "Friction Parameters"),
        "Friction affects how robots move and interact:\n\n```xml\n<surface><friction><ode>\n"
        "  <mu>0.9</mu>   <!-- traction -->\n  <mu2>0.1</mu2> <!-- easy turning -->\n"
        "</ode></friction></surface>\n```\n",
    )

    text = answer("How should mu and mu2 be set on a wheel?", friction)

    assert text.startswith("Friction affects how robots move and interact [1]:")
    assert "<mu2>0.1</mu2>" in text and "```xml" in text
