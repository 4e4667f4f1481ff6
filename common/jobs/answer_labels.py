"""What became of a finished chat question, for the author: answered, refused, uncertain, off topic.

Decided without a model, from what retrieval already measured (the guardrail's Coverage) and
the answer's text and citations:

- `refused`: the guardrail found the book does not cover the question, or the answer itself is
  the answerer's refusal (a model replying "The textbook does not cover this question.").
- `off_topic`: refused by the guardrail AND far from the book's subject: the best passage's
  similarity is below OFF_TOPIC_SIMILARITY, or below OFF_TOPIC_NEAR_SIMILARITY with at least
  OFF_TOPIC_MISSING of the question's specific terms absent from the book. A robotics question
  the book happens not to cover shares the book's words and meaning (and is `refused`); a
  question about the weather or a recipe shares neither.
- `uncertain`: answered, but on weak evidence: the best passage's similarity is less than
  UNCERTAIN_MARGIN above the guardrail's threshold, or at least UNCERTAIN_MISSING of the
  question's specific terms never occur in the book, or the answer cites nothing.
- `answered`: everything else.

The thresholds were calibrated with `python -m bench.answer_labels` on the retrieval
benchmark's questions and the labelled off-topic set (the README has the measured rates).
"""

from __future__ import annotations

from dataclasses import dataclass

from common.book.retrieval.guardrail import Coverage, Guardrail
from common.llm.prompts import NOT_IN_BOOK, NOT_IN_SELECTION
from common.platform.models import AnswerLabel

UNCERTAIN_MARGIN = 0.18
UNCERTAIN_MISSING = 0.15
OFF_TOPIC_SIMILARITY = 0.25
OFF_TOPIC_NEAR_SIMILARITY = 0.29
OFF_TOPIC_MISSING = 0.5
_REFUSALS = (NOT_IN_BOOK, NOT_IN_SELECTION)


@dataclass(frozen=True)
class LabelRules:
    """The thresholds of the decision (defaults calibrated on the benchmark sets)."""

    min_similarity: float = Guardrail.min_similarity
    uncertain_margin: float = UNCERTAIN_MARGIN
    uncertain_missing: float = UNCERTAIN_MISSING
    off_topic_similarity: float = OFF_TOPIC_SIMILARITY
    off_topic_near_similarity: float = OFF_TOPIC_NEAR_SIMILARITY
    off_topic_missing: float = OFF_TOPIC_MISSING

    def off_topic(self, coverage: Coverage) -> bool:
        """A refused question is far from the book's subject, not just beyond its pages."""
        top, missing = coverage.top_similarity, coverage.missing_fraction
        foreign = missing >= self.off_topic_missing
        return top < self.off_topic_similarity or (top < self.off_topic_near_similarity and foreign)

    def weak(self, coverage: Coverage) -> bool:
        """The evidence behind an answer is weak: little similarity, or unknown terms."""
        return (
            coverage.top_similarity < self.min_similarity + self.uncertain_margin
            or coverage.missing_fraction >= self.uncertain_missing
        )


def is_refusal(answer: str | None) -> bool:
    """The answer is an answerer's refusal: the book (or the selection) does not say."""
    text = (answer or "").strip().strip('"').strip()
    return any(text == refusal or text.startswith(refusal) for refusal in _REFUSALS)


def label_answer(
    coverage: Coverage | None,
    answer: str | None,
    cited: int,
    rules: LabelRules | None = None,
) -> AnswerLabel:
    """The label of a finished chat answer.

    `coverage` is the guardrail's assessment of the question (None for a question about the
    reader's selection, which is answered from the selection, not a search); `cited` is how many
    passages the answer cites.
    """
    rules = rules or LabelRules()
    if coverage is not None and not coverage.covered:
        return AnswerLabel.OFF_TOPIC if rules.off_topic(coverage) else AnswerLabel.REFUSED
    if is_refusal(answer):
        return AnswerLabel.REFUSED
    if cited == 0 or (coverage is not None and rules.weak(coverage)):
        return AnswerLabel.UNCERTAIN
    return AnswerLabel.ANSWERED
