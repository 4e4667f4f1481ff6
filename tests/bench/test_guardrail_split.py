"""The guardrail benchmark's split and tuning, on hand-made cases (no model, no index)."""

from __future__ import annotations

from bench.guardrail import MAX_FALSE_REFUSALS, Case, cross_validate, rates, split_folds, tune
from common.book.retrieval.guardrail import Guardrail, Vocabulary
from common.book.retrieval.passages import Passage

VOCABULARY = Vocabulary(["A ROS 2 node publishes messages on topics."])


def case(answerable: bool, similarity: float, n: int) -> Case:
    """A question about nodes whose best passage has the given dense similarity."""
    passage = Passage(
        source="nodes.md", title="Nodes", heading="Nodes", url="/", text="", score=0.5,
        similarity=similarity,
    )  # fmt: skip
    return Case(f"What does node {n} publish on topics?", answerable, [passage])


def separable() -> list[Case]:
    """Answerable questions score 0.4 and above, unanswerable ones 0.3 and below."""
    return [case(True, 0.4 + 0.01 * i, i) for i in range(20)] + [
        case(False, 0.3 - 0.01 * i, 100 + i) for i in range(10)
    ]


def test_folds_are_stratified_and_cover_every_case_once() -> None:
    cases = separable()
    folds = split_folds(cases, 5)
    assert sorted(id(c) for fold in folds for c in fold) == sorted(id(c) for c in cases)
    assert [sum(c.answerable for c in fold) for fold in folds] == [4] * 5
    assert [sum(not c.answerable for c in fold) for fold in folds] == [2] * 5


def test_rates_count_each_kind() -> None:
    got = rates(Guardrail(min_similarity=0.35), separable(), VOCABULARY)
    assert (got.refused_unanswerable, got.unanswerable) == (10, 10)
    assert (got.refused_answerable, got.answerable) == (0, 20)


def test_tune_refuses_most_within_the_false_refusal_cap() -> None:
    tuned = tune(separable(), VOCABULARY)
    got = rates(tuned, separable(), VOCABULARY)
    assert got.refusal_rate == 1.0
    assert got.false_refusal_rate <= MAX_FALSE_REFUSALS


def test_cross_validation_scores_every_case_once_on_untuned_thresholds() -> None:
    held_out, tuned = cross_validate(separable(), VOCABULARY, 5)
    assert (held_out.unanswerable, held_out.answerable) == (10, 20)
    assert len(tuned) == 5
    assert held_out.refusal_rate == 1.0 and held_out.false_refusal_rate == 0.0
