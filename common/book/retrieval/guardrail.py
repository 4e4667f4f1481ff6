"""Does the textbook cover a question? Refuse rather than invent when it does not.

Similarity scores alone do not separate unanswerable questions from answerable ones, so three
signals are combined: the dense similarity of the best passage; whether the names in the
question (MoveIt, PPO, Ziegler-Nichols: spelt as names) occur in the book at all; and what
share of the question's specific terms the book never uses. A question about a tool the book
never mentions is out of scope, however similar its generic words look.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from common.book.retrieval.passages import Passage
from common.book.retrieval.sparse import tokenize

# Words that ask rather than say what is asked about; their presence in the book means nothing.
_QUESTION_WORDS = (
    "explain describe differ difference different work works use used using mean means example "
    "examples main way ways role purpose type types kind kinds key help need make do does give "
    "important benefit benefits good best step steps happen include includes compare common "
    "typical tell list name called define definition overview introduce introduction chapter "
    "book textbook course module lesson section learn student students"
)
QUESTION_TERMS = frozenset(tokenize(_QUESTION_WORDS))


_WORD = re.compile(r"[^\W_]+")
_SENTENCE_START = re.compile(r"(?:^|[.?!]\s+)([^\W_]+)")


def _looks_like_a_name(word: str, sentence_start: bool) -> bool:
    """Product, method and project names: MoveIt, PPO, TensorRT, SLAM3, Ziegler (mid-sentence)."""
    has_digit = any(c.isdigit() for c in word) and any(c.isalpha() for c in word)
    mixed_case = any(c.isupper() for c in word[1:]) and any(c.islower() for c in word)
    acronym = len(word) > 1 and word.isupper()
    capitalised = word[:1].isupper() and not sentence_start
    return has_digit or mixed_case or acronym or capitalised


class Vocabulary:
    """The set of (stemmed) terms that occur anywhere in the indexed book."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.terms: set[str] = set()
        for text in texts:
            self.terms.update(tokenize(text))

    def specific_terms(self, question: str) -> list[str]:
        """The question's terms other than question words."""
        return [t for t in dict.fromkeys(tokenize(question)) if t not in QUESTION_TERMS]

    def missing(self, question: str) -> list[str]:
        """The question's specific terms that the book never uses."""
        return [t for t in self.specific_terms(question) if t not in self.terms and not t.isdigit()]

    def missing_names(self, question: str) -> list[str]:
        """Names in the question (by their spelling) that the book never mentions."""
        starts = {m.start(1) for m in _SENTENCE_START.finditer(question)}
        names: list[str] = []
        for match in _WORD.finditer(question):
            word = match.group()
            if not _looks_like_a_name(word, match.start() in starts):
                continue
            names.extend(
                t for t in tokenize(word) if t not in self.terms and t not in QUESTION_TERMS
            )
        return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Coverage:
    covered: bool
    top_similarity: float
    missing_terms: tuple[str, ...]
    # The share of the question's specific terms the book never uses (0 when it has none).
    missing_fraction: float = 0.0


@dataclass(frozen=True)
class Guardrail:
    """Thresholds calibrated on the retrieval benchmark's question set (docs/benchmarks.md)."""

    min_similarity: float = 0.30
    max_missing_fraction: float = 0.4

    def assess(self, question: str, passages: list[Passage], vocabulary: Vocabulary) -> Coverage:
        """Whether the passages can answer the question."""
        top = max((p.similarity for p in passages), default=0.0)
        missing = vocabulary.missing(question)
        specific = vocabulary.specific_terms(question)
        missing_fraction = len(missing) / len(specific) if specific else 0.0
        covered = (
            bool(passages)
            and top >= self.min_similarity
            and missing_fraction < self.max_missing_fraction
            and not vocabulary.missing_names(question)
        )
        return Coverage(covered, top, tuple(missing), missing_fraction)
