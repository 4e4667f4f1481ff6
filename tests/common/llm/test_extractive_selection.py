"""Ask about this, offline: the selection is the subject; the book around it explains it."""

from __future__ import annotations

import pytest

from common.book.retrieval.passages import Passage
from common.llm.base import AnswerRequest
from common.llm.extractive import ExtractiveAnswerer
from common.llm.extractive.selection import selection_intent
from common.llm.prompts import NOT_IN_SELECTION, build_messages

SELECTION = (
    "The reality gap refers to the difference between simulated environments and the real "
    "world. This gap shows in friction, sensor noise and motor dynamics. Controllers tuned "
    "only in simulation can become unstable on real robots because of it."
)
HOME = Passage(
    "sim-to-real.md",
    "Sim-to-Real Transfer",
    "Definition",
    "/sim-to-real#definition",
    "Robots learn cheaply in simulation before they meet hardware. " + SELECTION,
    0.9,
)
AROUND = Passage(
    "randomization.md",
    "Domain Randomization",
    "Concept",
    "/randomization#concept",
    "Domain randomization is a technique that narrows the reality gap by varying friction and "
    "sensor noise during training.",
    0.8,
)


def ask(question: str, *around: Passage) -> str:
    """The offline answer about the selection, with the book passages around it."""
    selected = Passage("selection", "Selected text", "Selected text", "", SELECTION, 1.0)
    request = AnswerRequest(question, [selected, *around], from_selection=True)
    return ExtractiveAnswerer().generate(request, lambda _d: None).text


@pytest.mark.parametrize(
    ("question", "intent"),
    [
        ("Explain this in simpler words", "explain"),
        ("Summarize this", "summarize"),
        ("What is this about?", "about"),
        ("What does motor dynamics mean?", "define"),
        ("Which port does the daemon use?", "question"),
    ],
)
def test_the_prompts_readers_type_are_recognised(question: str, intent: str) -> None:
    assert selection_intent(question)[0] == intent


def test_explain_this_quotes_the_selection_and_the_book_around_it() -> None:
    text = ask("Explain this in simpler words", HOME, AROUND)

    assert text != NOT_IN_SELECTION
    assert "difference between simulated environments and the real world" in text
    assert "[1]" in text and ("[2]" in text or "[3]" in text)


def test_summarize_this_is_shorter_than_the_selection() -> None:
    text = ask("Summarize this", HOME, AROUND)

    assert "difference between simulated environments" in text and "[1]" in text
    assert len(text.split()) < len(SELECTION.split())


def test_what_is_this_about_names_the_section_it_comes_from() -> None:
    text = ask("What is this about?", HOME, AROUND)

    assert "“Definition” in “Sim-to-Real Transfer” [2]" in text and "[1]" in text


def test_a_term_of_the_selection_is_defined_from_the_book() -> None:
    text = ask("What is domain randomization?", HOME, AROUND)

    assert text.startswith("Domain randomization is a technique") and "[3]" in text


def test_without_the_book_around_it_the_selection_alone_answers() -> None:
    assert "[1]" in ask("Summarize this") and "[1]" in ask("Explain this in simpler words")


def test_a_question_the_selection_does_not_touch_is_still_refused() -> None:
    assert ask("Which port does the ROS 2 daemon use?", HOME, AROUND) == NOT_IN_SELECTION


def test_the_model_is_told_the_selection_is_the_subject() -> None:
    selected = Passage("selection", "Selected text", "Selected text", "", SELECTION, 1.0)
    request = AnswerRequest("Explain this", [selected, HOME], from_selection=True)

    system = build_messages(request)[0]["content"]

    assert "the selection is the subject of the question" in system
    assert "[1] Selected text" in system and "[2] Sim-to-Real Transfer" in system
