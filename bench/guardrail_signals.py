"""Candidate refusal signals read against the passages, measured on held-out folds.

Two signals the shipped guardrail does not use: the share of the question's specific terms
that the best passage (its text and headings) holds, and the local MiniLM similarity between
the question and the passages' best *sentence* (not chunk). A question is refused when the
shipped guardrail refuses it, or when both signals fall below thresholds tuned, fold by fold,
on the other folds, as `bench.guardrail` tunes its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.guardrail import Case, Rates, split_folds
from common.book.retrieval.guardrail import Guardrail, Vocabulary
from common.book.retrieval.passages import Passage
from common.book.retrieval.sparse import tokenize
from common.llm.extractive.units import passage_units

Embed = Callable[[Sequence[str]], list[list[float]]]
SENTENCE_GRID = tuple(round(0.30 + 0.02 * i, 2) for i in range(16))  # 0.30 .. 0.60
COVERAGE_GRID = (0.0, 0.125, 0.2, 0.25, 0.3, 0.34, 0.375, 0.4, 0.45, 0.5)


@dataclass(frozen=True)
class Signals:
    answerable: bool
    shipped_refuses: bool
    top_coverage: float
    best_sentence: float


def top_coverage(question: str, passage: Passage | None, vocabulary: Vocabulary) -> float:
    """Share of the question's specific terms found in the best passage or its headings."""
    specific = vocabulary.specific_terms(question)
    if passage is None or not specific:
        return 0.0
    held = set(tokenize(" ".join([passage.text, *passage.heading_path])))
    return sum(t in held for t in specific) / len(specific)


def best_sentence(question: str, passages: Sequence[Passage], embed: Embed) -> float:
    """The highest MiniLM cosine between the question and a sentence or item of the passages."""
    sentences = [
        u.text
        for p in passages
        for u in passage_units(p.text)
        if u.kind != "code" and len(u.text.split()) >= 3
    ]
    if not sentences:
        return 0.0
    vectors = embed([question, *sentences])
    return max(sum(a * b for a, b in zip(vectors[0], v, strict=True)) for v in vectors[1:])


def signals(cases: Sequence[Case], vocabulary: Vocabulary, embed: Embed) -> list[Signals]:
    """Every case's signals, with the shipped guardrail's decision."""
    shipped = Guardrail()
    return [
        Signals(
            c.answerable,
            not shipped.assess(c.question, c.passages, vocabulary).covered,
            top_coverage(c.question, c.passages[0] if c.passages else None, vocabulary),
            best_sentence(c.question, c.passages, embed),
        )
        for c in cases
    ]


def rule_rates(rows: Sequence[Signals], sentence: float, coverage: float) -> Rates:
    """Refusals of the shipped guardrail plus the rule (both signals below their thresholds)."""
    refused = [
        r.shipped_refuses or (r.best_sentence < sentence and r.top_coverage < coverage)
        for r in rows
    ]
    return Rates(
        sum(f for f, r in zip(refused, rows, strict=True) if not r.answerable),
        sum(not r.answerable for r in rows),
        sum(f for f, r in zip(refused, rows, strict=True) if r.answerable),
        sum(r.answerable for r in rows),
    )


def tune_rule(rows: Sequence[Signals], cap: float) -> tuple[float, float]:
    """The grid's thresholds refusing most unanswerable rows with at most `cap` false refusals."""
    scored = []
    for sentence in SENTENCE_GRID:
        for coverage in COVERAGE_GRID:
            got = rule_rates(rows, sentence, coverage)
            if got.false_refusal_rate <= cap:
                scored.append(((got.refusal_rate, -got.false_refusal_rate), (sentence, coverage)))
    best = max(key for key, _ in scored)
    ties = [t for key, t in scored if key == best]
    return ties[len(ties) // 2]


def cross_validate_rule(
    rows: Sequence[Signals], n: int, cap: float
) -> tuple[Rates, list[tuple[float, float]]]:
    """Held-out rates of the rule, its thresholds tuned on the other folds."""
    stand_ins = [Case(str(i), r.answerable, []) for i, r in enumerate(rows)]
    folds = split_folds(stand_ins, n)
    total, tuned = Rates(0, 0, 0, 0), []
    for i, held_out in enumerate(folds):
        calibration = [rows[int(c.question)] for j, f in enumerate(folds) if j != i for c in f]
        thresholds = tune_rule(calibration, cap)
        tuned.append(thresholds)
        total = total + rule_rates([rows[int(c.question)] for c in held_out], *thresholds)
    return total, tuned
