"""What became of a finished chat question, for the author: answered, refused, uncertain, off topic.

Decided without a model, from what retrieval already measured (the guardrail's Coverage) and
the answer's text and citations:

- `refused`: the guardrail found the book does not cover the question, or the answer itself is
  the answerer's refusal (a model saying "The textbook does not cover this question.").
- `off_topic`: refused by the guardrail AND far from the book's subject: the best passage's
  similarity is below OFF_TOPIC_SIMILARITY and at least OFF_TOPIC_MISSING of the question's
  specific terms never occur in the book. A robotics question the book happens not to cover
  shares the book's words (and is `refused`); a question about the weather shares none.
- `uncertain`: answered, but on weak evidence: the best passage is within UNCERTAIN_MARGIN of
  the guardrail's similarity threshold, or some of the question's specific terms never occur in
  the book, or the answer cites nothing.
- `answered`: everything else.

The thresholds were calibrated with `python -m bench.answer_labels` on the retrieval
benchmark's questions and a labelled off-topic set (see the README for the measured rates).
"""

from __future__ import annotations

from dataclasses import dataclass

from common.book.retrieval.guardrail import Coverage, Guardrail
from common.llm.prompts import NOT_IN_BOOK, NOT_IN_SELECTION
from common.platform.models import AnswerLabel

UNCERTAIN_MARGIN = 0.08
OFF_TOPIC_SIMILARITY = 0.25
OFF_TOPIC_MISSING = 0.5
_REFUSALS = (NOT_IN_BOOK, NOT_IN_SELECTION)


@dataclass(frozen=True)
class LabelRules:
    """The thresholds of the decision (defaults calibrated on the benchmark sets)."""

    min_similarity: float = Guardrail.min_similarity
    uncertain_margin: float = UNCERTAIN_MARGIN
    off_topic_similarity: float = OFF_TOPIC_SIMILARITY
    off_topic_missing: float = OFF_TOPIC_MISSING


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
        far = coverage.top_similarity < rules.off_topic_similarity
        foreign = coverage.missing_fraction >= rules.off_topic_missing
        return AnswerLabel.OFF_TOPIC if far and foreign else AnswerLabel.REFUSED
    if is_refusal(answer):
        return AnswerLabel.REFUSED
    if cited == 0:
        return AnswerLabel.UNCERTAIN
    if coverage is not None and (
        coverage.top_similarity < rules.min_similarity + rules.uncertain_margin
        or coverage.missing_terms
    ):
        return AnswerLabel.UNCERTAIN
    return AnswerLabel.ANSWERED
