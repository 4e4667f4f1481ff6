"""Honest citations: exactly what the markers cite, the rest apart, dangling markers dropped."""

from __future__ import annotations

from common.book.retrieval.passages import Passage
from common.llm.citations import cited_numbers, resolve_citations, unresolved_markers


def _passages(count: int) -> list[Passage]:
    return [
        Passage(f"doc{n}.md", f"Doc {n}", f"Part {n}", f"/doc{n}", f"Text {n}.", 1.0 / n)
        for n in range(1, count + 1)
    ]


def test_citations_are_the_cited_passages_numbered_as_the_markers() -> None:
    text = "Topics carry messages [3]. Services answer requests [1][3]."

    cited = resolve_citations(text, _passages(5))

    assert [c["n"] for c in cited.citations] == [1, 3]
    assert [c["source"] for c in cited.citations] == ["doc1.md", "doc3.md"]
    assert [s["n"] for s in cited.sources] == [2, 4, 5]
    assert cited.text == text and cited.dropped == []


def test_a_list_marker_cites_each_number() -> None:
    cited = resolve_citations("Both hold [2, 4].", _passages(4))

    assert [c["n"] for c in cited.citations] == [2, 4]
    assert [s["n"] for s in cited.sources] == [1, 3]


def test_markers_that_name_no_passage_are_dropped_from_the_text() -> None:
    cited = resolve_citations("A claim [7]. Another [0]. A third [2, 9].", _passages(3))

    assert cited.text == "A claim. Another. A third [2]."
    assert cited.dropped == [7, 0, 9]
    assert [c["n"] for c in cited.citations] == [2]
    assert unresolved_markers(cited.text, cited.citations) == []


def test_an_answer_without_markers_cites_nothing() -> None:
    cited = resolve_citations("The textbook does not cover this question.", _passages(2))

    assert cited.citations == [] and [s["n"] for s in cited.sources] == [1, 2]


def test_brackets_in_code_and_links_are_not_markers() -> None:
    text = (
        "Index the list [1]: `msg.data[2]` and\n```python\nx = values[3]\n[4]\n```\n"
        "See [the docs](https://example.org) and arr[5]."
    )

    assert cited_numbers(text, 5) == ([1], [])
    assert resolve_citations(text, _passages(5)).text == text


def test_unresolved_markers_names_markers_without_a_citation() -> None:
    citations = _passages(1)[0].citation(1)

    assert unresolved_markers("Yes [1]. No [2].", [citations]) == [2]


def test_no_passages_means_no_citations_and_no_sources() -> None:
    cited = resolve_citations("Nothing to cite [1].", [])

    assert cited.text == "Nothing to cite." and cited.citations == [] and cited.sources == []
