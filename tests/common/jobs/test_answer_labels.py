"""The label of a finished answer, decided from the guardrail's coverage and the answer."""

from __future__ import annotations

import pytest

from common.book.retrieval.guardrail import Coverage
from common.jobs.answer_labels import LabelRules, is_refusal, label_answer
from common.llm.prompts import NOT_IN_BOOK, NOT_IN_SELECTION
from common.platform.models import AnswerLabel

ANSWER = "A node is a process that publishes on topics [1]."


def covered(top: float, missing: float = 0.0) -> Coverage:
    """A question the guardrail let through."""
    return Coverage(True, top, ("term",) if missing else (), missing)


def refused(top: float, missing: float) -> Coverage:
    """A question the guardrail refused."""
    return Coverage(False, top, ("term",) if missing else (), missing)


def test_strong_evidence_with_a_citation_is_answered() -> None:
    assert label_answer(covered(0.7), ANSWER, cited=1) == AnswerLabel.ANSWERED


@pytest.mark.parametrize(
    ("coverage", "cited"),
    [
        (covered(0.40), 1),  # within the margin above the guardrail's threshold
        (covered(0.70, missing=0.2), 1),  # a fifth of its terms the book never uses
        (covered(0.70), 0),  # cites nothing
    ],
)
def test_weak_evidence_is_uncertain(coverage: Coverage, cited: int) -> None:
    assert label_answer(coverage, ANSWER, cited) == AnswerLabel.UNCERTAIN


def test_a_guardrail_refusal_close_to_the_book_is_refused() -> None:
    assert label_answer(refused(0.45, 0.2), NOT_IN_BOOK, cited=0) == AnswerLabel.REFUSED


@pytest.mark.parametrize("coverage", [refused(0.18, 0.2), refused(0.27, 0.67)])
def test_a_refusal_far_from_the_book_is_off_topic(coverage: Coverage) -> None:
    assert label_answer(coverage, NOT_IN_BOOK, cited=0) == AnswerLabel.OFF_TOPIC


def test_a_refusal_near_the_book_with_familiar_words_is_not_off_topic() -> None:
    assert label_answer(refused(0.27, 0.25), NOT_IN_BOOK, cited=0) == AnswerLabel.REFUSED


@pytest.mark.parametrize("text", [NOT_IN_BOOK, f'"{NOT_IN_BOOK}"', f"  {NOT_IN_SELECTION}\n"])
def test_a_model_saying_the_book_does_not_cover_it_is_refused(text: str) -> None:
    assert is_refusal(text)
    assert label_answer(covered(0.8), text, cited=0) == AnswerLabel.REFUSED
    assert label_answer(None, text, cited=0) == AnswerLabel.REFUSED


def test_a_selection_answer_is_labelled_by_its_citations() -> None:
    assert label_answer(None, ANSWER, cited=1) == AnswerLabel.ANSWERED
    assert label_answer(None, "It explains it.", cited=0) == AnswerLabel.UNCERTAIN
    assert not is_refusal(ANSWER) and not is_refusal(None)


def test_the_rules_take_other_thresholds() -> None:
    strict = LabelRules(uncertain_margin=0.5)
    assert label_answer(covered(0.7), ANSWER, 1, strict) == AnswerLabel.UNCERTAIN
