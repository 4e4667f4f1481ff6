"""The answer-quality benchmark's checks and its selection cases."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from bench import answer_checks as check
from bench.answer_quality import SELECTION_CASES
from bench.retrieval import DEFAULT_CORPUS


def test_contains_ignores_markers_markup_and_case() -> None:
    answer = "A **topic** is a named channel [2]. Nodes publish on it [3]."

    assert check.contains(answer, "A topic is a named channel.")
    assert not check.contains(answer, "A service is a call.")


def test_answer_sentences_split_prose_and_items_and_skip_code() -> None:
    answer = "Steps [1]:\n1. Create a node class\n- Add a timer\n\n```python\nx = 1\n```\n"
    answer += "The node is done."

    assert check.answer_sentences(answer) == [
        "Create a node class",
        "Add a timer",
        "The node is done.",
    ]
    assert check.has_code(answer)


def test_an_answer_opening_on_a_reference_is_flagged() -> None:
    assert check.opens_unresolved("This mismatch is called the sim-to-real gap [1].")
    assert not check.opens_unresolved("Simulators differ from reality. This mismatch is a gap.")
    assert check.is_refusal("The textbook does not cover this question.")


def test_near_duplicates_and_the_key_sentence_use_the_embedder() -> None:
    def embed(texts: Sequence[str]) -> list[list[float]]:
        # A plain fake: a unit vector per first letter.
        return [[1.0, 0.0] if t.lower().startswith("a") else [0.0, 1.0] for t in texts]

    assert check.max_pair_similarity("A one is here. And again here. Bee here.", embed) == 1.0
    assert check.max_pair_similarity("A one is here. Bee is there.", embed) == 0.0
    assert check.key_sentence("a question", ["Bee sentence", "A sentence"], embed) == "A sentence"
    assert check.cited("x [1]. y [3][2].") == {1, 2, 3}


@pytest.mark.skipif(not DEFAULT_CORPUS.is_dir(), reason="no shared corpus here")
def test_selection_cases_are_real_passages_of_the_book() -> None:
    cases = json.loads(SELECTION_CASES.read_text())
    kinds = {c["kind"] for c in cases}

    assert kinds == {"explain", "summarize", "about", "define"} and len(cases) >= 20
    for case in cases:
        assert {"source", "heading", "selection", "question", "expect"} <= set(case)
        assert case["kind"] != "define" or case["term"]
        page = (DEFAULT_CORPUS / case["source"]).read_text()
        plain = " ".join(page.replace("**", "").replace("- ", "").split())
        assert " ".join(case["selection"].split()) in plain
