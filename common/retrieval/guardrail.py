"""Does the textbook cover a question? Refuse rather than invent when it does not.

Similarity scores alone do not separate unanswerable questions from answerable ones, so two
signals are combined: the dense similarity of the best passage, and whether the question's
specific terms occur in the book at all (a question about "Ziegler-Nichols" in a book that
never mentions it is out of scope, however similar its generic words look).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from common.retrieval.passages import Passage
from common.retrieval.sparse import tokenize

# Words that ask rather than say what is asked about; their presence in the book means nothing.
_QUESTION_WORDS = (
    "explain describe differ difference different work works use used using mean means example "
    "examples main way ways role purpose type types kind kinds key help need make do does give "
    "important benefit benefits good best step steps happen include includes compare common "
    "typical tell list name called define definition overview introduce introduction chapter "
    "book textbook course module lesson section learn student students"
)
QUESTION_TERMS = frozenset(tokenize(_QUESTION_WORDS))


class Vocabulary:
    """The set of (stemmed) terms that occur anywhere in the indexed book."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.terms: set[str] = set()
        for text in texts:
            self.terms.update(tokenize(text))

    def missing(self, question: str) -> list[str]:
        """The question's specific terms that the book never uses."""
        terms = [t for t in dict.fromkeys(tokenize(question)) if t not in QUESTION_TERMS]
        return [t for t in terms if t not in self.terms and not t.isdigit()]

    def specific_terms(self, question: str) -> list[str]:
        """The question's terms other than question words."""
        return [t for t in dict.fromkeys(tokenize(question)) if t not in QUESTION_TERMS]


@dataclass(frozen=True)
class Coverage:
    covered: bool
    top_similarity: float
    missing_terms: tuple[str, ...]


@dataclass(frozen=True)
class Guardrail:
    """Thresholds calibrated on the retrieval benchmark's question set (see README)."""

    min_similarity: float = 0.30
    strong_similarity: float = 0.55
    max_missing_fraction: float = 0.25

    def assess(self, question: str, passages: list[Passage], vocabulary: Vocabulary) -> Coverage:
        """Whether the passages can answer the question."""
        top = max((p.similarity for p in passages), default=0.0)
        missing = vocabulary.missing(question)
        specific = vocabulary.specific_terms(question)
        missing_fraction = len(missing) / len(specific) if specific else 0.0
        covered = (
            bool(passages)
            and top >= self.min_similarity
            and (top >= self.strong_similarity or missing_fraction <= self.max_missing_fraction)
        )
        return Coverage(covered, top, tuple(missing))
