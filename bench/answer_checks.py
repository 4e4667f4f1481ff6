"""Automatic checks of an answer's text, shared by the answer-quality benchmark and its tests."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from common.llm.prompts import NOT_IN_BOOK, NOT_IN_SELECTION

Embed = Callable[[Sequence[str]], list[list[float]]]
# Two answer sentences more alike than this (MiniLM cosine) repeat each other.
DUPLICATE_BOUND = 0.9
_MARKER = re.compile(r"\s*\[\d+\]")
_CODE = re.compile(r"```.*?(```|$)", re.S)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
# Openers that point back at something the sentence does not name ("This mismatch", "It").
UNRESOLVED = re.compile(
    r"^(this|these|that|those|it|its|they|their|them|such|he|she|both|here|however|also|"
    r"therefore|thus|moreover|furthermore|additionally|instead|similarly|likewise)\b",
    re.I,
)
HOWTO = re.compile(r"^(how (do|can|should|would) (i|we|you)|how to|write|show me)\b", re.I)


def normalize(text: str) -> str:
    """Lowercase words only: no markers, markup or punctuation, single spaces."""
    return " ".join(re.sub(r"[^\w]+", " ", _MARKER.sub("", text).lower()).split())


def is_refusal(text: str) -> bool:
    """Whether the answer is one of the fixed refusals."""
    return text.strip() in (NOT_IN_BOOK, NOT_IN_SELECTION)


def answer_sentences(text: str) -> list[str]:
    """The answer's prose sentences and list items, code left out, markers removed."""
    prose = _CODE.sub("\n", text)
    parts = (_MARKER.sub("", p).strip(" -\n") for p in _SENTENCE_END.split(prose))
    return [re.sub(r"^\d+\.\s+", "", p) for p in parts if len(p.split()) >= 3]


def contains(answer: str, sentence: str) -> bool:
    """Whether the answer quotes the sentence (compared as normalized words)."""
    return normalize(sentence) in normalize(answer)


def opens_unresolved(text: str) -> bool:
    """Whether the answer's first sentence opens on a reference it does not resolve."""
    sentences = answer_sentences(text)
    return bool(sentences) and bool(UNRESOLVED.match(sentences[0]))


def has_code(text: str) -> bool:
    """Whether the answer holds a fenced code block."""
    return "```" in text


def cited(text: str) -> set[int]:
    """The passage numbers the answer's `[n]` markers cite."""
    return {int(n) for n in re.findall(r"\[(\d+)\]", text)}


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine of two unit vectors."""
    return sum(x * y for x, y in zip(a, b, strict=True))


def max_pair_similarity(text: str, embed: Embed) -> float:
    """The highest similarity between two of the answer's sentences (0 with fewer than two)."""
    sentences = answer_sentences(text)
    if len(sentences) < 2:
        return 0.0
    vectors = embed(sentences)
    return max(
        cosine(vectors[i], vectors[j])
        for i in range(len(vectors))
        for j in range(i + 1, len(vectors))
    )


def key_sentence(question: str, candidates: Sequence[str], embed: Embed) -> str | None:
    """The candidate most similar to the question (the gold section's key sentence)."""
    if not candidates:
        return None
    vectors = embed([question, *candidates])
    best = max(range(len(candidates)), key=lambda i: cosine(vectors[0], vectors[i + 1]))
    return candidates[best]
