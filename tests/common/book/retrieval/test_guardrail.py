"""The coverage guardrail: the book's vocabulary and the thresholds, on hand-written passages."""

from __future__ import annotations

import pytest

from common.book.retrieval.guardrail import Coverage, Guardrail, Vocabulary
from common.book.retrieval.passages import Passage

BOOK = (
    "Nodes, Topics and Services. A ROS 2 node publishes messages on topics.",
    "Gazebo simulates robots, their sensors and the world around them.",
)
COVERED = "What is a ROS 2 node?"
ONE_OF_FOUR_MISSING = "Do robots publish topics with lidar?"  # robot publish topic | lidar
ONE_OF_THREE_MISSING = "Do robots publish lidar?"  # robot publish | lidar
TWO_OF_FIVE_MISSING = "Do robots publish lidar scans on topics?"  # robot publish topic | lidar scan
TWO_OF_THREE_MISSING = "Do robots use lidar odometry?"  # robot | lidar odometri
GUARDRAIL = Guardrail()


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    """The terms of a two-passage book."""
    return Vocabulary(BOOK)


def passage(similarity: float) -> Passage:
    """A retrieved passage with the given dense similarity to the question."""
    return Passage(
        source="01-ros2/nodes.md",
        title="Nodes",
        heading="What is a node?",
        url="/01-ros2/nodes#what-is-a-node",
        text="A ROS 2 node publishes messages on topics.",
        score=0.5,
        similarity=similarity,
    )


def assess(question: str, vocabulary: Vocabulary, *similarities: float) -> Coverage:
    """The default guardrail's verdict on passages with these similarities."""
    return GUARDRAIL.assess(question, [passage(s) for s in similarities], vocabulary)


# Vocabulary


def test_vocabulary_holds_stemmed_terms(vocabulary: Vocabulary) -> None:
    assert {"node", "publish", "topic", "gazebo", "simul", "robot", "ros", "2"} <= vocabulary.terms
    assert "the" not in vocabulary.terms
    assert Vocabulary([]).terms == set()


def test_missing_lists_the_specific_terms_the_book_never_uses(vocabulary: Vocabulary) -> None:
    assert vocabulary.missing("What is Ziegler-Nichols tuning?") == ["ziegler", "nichol", "tune"]
    assert vocabulary.missing("Do nodes publish lidar and LIDAR scans?") == ["lidar", "scan"]
    assert vocabulary.missing("How do simulated robots publish topics?") == []


def test_missing_ignores_question_words(vocabulary: Vocabulary) -> None:
    question = "Explain the main purpose and role of a node; give an example, compare the types."

    assert vocabulary.missing(question) == []
    assert vocabulary.specific_terms(question) == ["node"]
    assert vocabulary.specific_terms("Describe and explain, with examples.") == []


def test_missing_ignores_digits(vocabulary: Vocabulary) -> None:
    assert vocabulary.missing("Do ROS 3 nodes publish 2024 topics?") == []
    # Digits are still specific terms: they count in the missing fraction's denominator.
    assert vocabulary.specific_terms("ROS 3 nodes in 2024") == ["ros", "3", "node", "2024"]


@pytest.mark.parametrize(
    ("question", "names"),
    [
        ("Do nodes publish to MoveIt?", ["moveit"]),  # mixed case
        ("Do nodes publish PPO rewards?", ["ppo"]),  # acronym
        ("Do nodes run on SLAM3 robots?", ["slam3"]),  # letters and digits
        ("How do nodes use Ziegler tuning?", ["ziegler"]),  # capitalised mid-sentence
        ("Does Gazebo simulate ROS 2 nodes?", []),  # names the book uses
        ("Do nodes publish lidar?", []),  # lower case: a word, not a name
        ("Lidar nodes publish topics?", []),  # capitalised only as a sentence's first word
        ("Nodes publish topics. Lidar nodes too?", []),
        ("Do nodes publish Lidar?", ["lidar"]),
    ],
)
def test_missing_names_are_names_the_book_never_mentions(
    vocabulary: Vocabulary, question: str, names: list[str]
) -> None:
    assert vocabulary.missing_names(question) == names


# Assessment


def test_no_passages_are_never_covered(vocabulary: Vocabulary) -> None:
    coverage = GUARDRAIL.assess(COVERED, [], vocabulary)

    assert coverage == Coverage(covered=False, top_similarity=0.0, missing_terms=())


def test_the_best_passage_decides_the_similarity(vocabulary: Vocabulary) -> None:
    coverage = assess(COVERED, vocabulary, 0.1, 0.62, 0.4)

    assert coverage == Coverage(covered=True, top_similarity=0.62, missing_terms=())


@pytest.mark.parametrize(
    ("similarity", "covered"),
    [(0.0, False), (0.2999, False), (0.30, True), (0.31, True), (0.95, True)],
)
def test_min_similarity_when_every_term_is_in_the_book(
    vocabulary: Vocabulary, similarity: float, covered: bool
) -> None:
    coverage = assess(COVERED, vocabulary, similarity)

    assert (coverage.covered, coverage.top_similarity) == (covered, similarity)


@pytest.mark.parametrize(
    ("question", "covered"),
    [
        (ONE_OF_FOUR_MISSING, True),  # 0.25
        (ONE_OF_THREE_MISSING, True),  # 0.33
        (TWO_OF_FIVE_MISSING, False),  # 0.4: the limit itself is refused
        (TWO_OF_THREE_MISSING, False),  # 0.67
    ],
)
@pytest.mark.parametrize("similarity", [0.30, 0.95])
def test_max_missing_fraction_at_any_similarity(
    vocabulary: Vocabulary, question: str, covered: bool, similarity: float
) -> None:
    coverage = assess(question, vocabulary, similarity)

    assert coverage.covered is covered
    assert coverage.missing_terms == tuple(vocabulary.missing(question))


def test_a_name_the_book_never_mentions_is_refused(vocabulary: Vocabulary) -> None:
    question = "How do ROS 2 nodes publish topics with MoveIt?"  # 1 of 6 terms missing
    assert vocabulary.missing(question) == ["moveit"]

    coverage = assess(question, vocabulary, 0.95)

    assert coverage == Coverage(
        covered=False, top_similarity=0.95, missing_terms=("moveit",), missing_fraction=1 / 6
    )
    assert assess("How do ROS 2 nodes publish topics with moveit?", vocabulary, 0.95).covered


def test_thresholds_are_configurable(vocabulary: Vocabulary) -> None:
    lenient = Guardrail(min_similarity=0.1, max_missing_fraction=0.7)

    assert lenient.assess(TWO_OF_THREE_MISSING, [passage(0.1)], vocabulary).covered
    assert not lenient.assess(TWO_OF_THREE_MISSING, [passage(0.09)], vocabulary).covered


def test_only_question_words_are_judged_by_similarity(vocabulary: Vocabulary) -> None:
    question = "Explain and describe, with an example."

    assert assess(question, vocabulary, 0.30).covered
    assert not assess(question, vocabulary, 0.29).covered


def test_title_case_question_words_are_not_names(vocabulary: Vocabulary) -> None:
    # "Main" and "Purpose" look like names; they are question words the book never uses.
    question = "What Is The Main Purpose Of Nodes?"
    assert vocabulary.missing(question) == []
    assert vocabulary.missing_names(question) == []
    assert assess(question, vocabulary, 0.6).covered
