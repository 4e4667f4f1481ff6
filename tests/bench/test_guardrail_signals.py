"""The candidate refusal signals and their held-out tuning, on hand-made rows (no model)."""

from __future__ import annotations

from bench.guardrail_signals import Signals, cross_validate_rule, rule_rates, top_coverage
from common.book.retrieval.guardrail import Vocabulary
from common.book.retrieval.passages import Passage

VOCABULARY = Vocabulary(["A ROS 2 node publishes messages on topics. Harmonic drives reduce."])


def test_top_coverage_counts_the_question_terms_the_best_passage_holds() -> None:
    passage = Passage(
        "nodes.md", "Nodes", "Topics", "/", "A node publishes messages.", 1.0, ("Nodes", "Topics")
    )

    got = top_coverage("Which node publishes on topics with harmonic drives?", passage, VOCABULARY)

    assert got == 3 / 5  # node, publish and topic (a heading); not harmonic, drive
    assert top_coverage("Which node?", None, VOCABULARY) == 0.0


def rows() -> list[Signals]:
    """Answerable rows score high on both signals; unanswerable ones low on both."""
    return [Signals(True, False, 0.8, 0.6 + 0.01 * i) for i in range(20)] + [
        Signals(False, False, 0.2, 0.35) for _ in range(10)
    ]


def test_the_rule_refuses_only_when_both_signals_are_low() -> None:
    got = rule_rates(rows(), sentence=0.5, coverage=0.3)
    assert (got.refused_unanswerable, got.refused_answerable) == (10, 0)
    got = rule_rates(rows(), sentence=0.7, coverage=0.3)  # coverage keeps the answerable ones
    assert got.refused_answerable == 0


def test_held_out_tuning_scores_every_row_once() -> None:
    held_out, tuned = cross_validate_rule(rows(), 5, 0.0)
    assert (held_out.unanswerable, held_out.answerable) == (10, 20)
    assert held_out.refused_unanswerable == 10 and held_out.refused_answerable == 0
    assert len(tuned) == 5
