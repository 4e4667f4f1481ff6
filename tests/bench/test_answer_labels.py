"""Labels on the benchmark's answerable, unanswerable and off-topic questions.

The coverages were recorded from real retrieval over the textbook by
`python -m bench.answer_labels --record bench/answer_label_coverages.json`; labelling them needs
no index. The bounds hold the rates the README states, with a little room.
"""

from __future__ import annotations

import json

from bench.answer_labels import KINDS, RECORDED, label_rates, question_sets


def recorded() -> list[dict[str, object]]:
    return list(json.loads(RECORDED.read_text()))


def test_the_recording_covers_every_benchmark_question() -> None:
    rows = recorded()
    assert [(r["kind"], r["question"]) for r in rows] == question_sets()
    assert {r["kind"] for r in rows} == set(KINDS)


def test_answerable_questions_are_answered_never_refused() -> None:
    got = label_rates(recorded())["answerable"]
    assert got.get("refused", 0) == 0 and got.get("off_topic", 0) == 0
    assert got["answered"] / got["total"] >= 0.75


def test_unanswerable_robotics_questions_are_refused_never_off_topic() -> None:
    got = label_rates(recorded())["unanswerable"]
    assert got.get("off_topic", 0) == 0
    assert got["refused"] / got["total"] >= 0.70
    # Of those that slip past the guardrail, most are flagged uncertain.
    assert got.get("uncertain", 0) > got.get("answered", 0)


def test_off_topic_questions_are_off_topic() -> None:
    got = label_rates(recorded())["off_topic"]
    assert got["off_topic"] / got["total"] >= 0.85
    assert got.get("answered", 0) == 0
