"""The report's page tables: pages cited most, cited in thumbs-down answers, never cited."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.admin.insights.questions import Question

TOP_PAGES = 20


@dataclass(frozen=True)
class Page:
    """One page of the index: its public URL, title and source file."""

    url: str
    title: str
    source: str


@dataclass
class _Tally:
    title: str
    source: str
    citations: int = 0
    up: int = 0
    down: int = 0
    down_citations: int = 0


def page_tables(
    questions: list[Question], catalogue: list[Page], limit: int = TOP_PAGES
) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """({most_cited, cited_in_down, never_cited}, ratings_per_page) for the window's answers."""
    tallies: dict[str, _Tally] = {}
    for question in questions:
        if not question.current:
            continue
        for page in question.pages:
            tally = tallies.get(page["url"])
            if tally is None:
                tally = tallies[page["url"]] = _Tally(page["title"], page["source"])
            tally.citations += 1
            tally.up += question.up
            tally.down += question.down
            tally.down_citations += question.down > 0
    for entry in catalogue:  # the index's titles are the current ones
        if entry.url in tallies and entry.title:
            tallies[entry.url].title = entry.title

    def row(url: str, citations: int) -> dict[str, Any]:
        t = tallies[url]
        return {
            "url": url,
            "title": t.title,
            "source": t.source,
            "citations": citations,
            "up": t.up,
            "down": t.down,
        }

    most = sorted(tallies, key=lambda u: (-tallies[u].citations, u))[:limit]
    in_down = sorted(
        (u for u in tallies if tallies[u].down_citations),
        key=lambda u: (-tallies[u].down_citations, -tallies[u].down, u),
    )[:limit]
    never = sorted(
        {p.url: p for p in catalogue if p.url and p.url not in tallies}.values(),
        key=lambda p: (p.source, p.url),
    )
    rated = sorted(
        (u for u in tallies if tallies[u].up or tallies[u].down),
        key=lambda u: (-tallies[u].down, -tallies[u].up, u),
    )
    tables = {
        "most_cited": [row(u, tallies[u].citations) for u in most],
        "cited_in_down": [row(u, tallies[u].down_citations) for u in in_down],
        "never_cited": [{"url": p.url, "title": p.title, "source": p.source} for p in never],
    }
    ratings = [
        {k: v for k, v in row(u, tallies[u].citations).items() if k != "citations"} for u in rated
    ]
    return tables, ratings
