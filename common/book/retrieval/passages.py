"""A retrieved passage: what answerers read and citations point to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Passage:
    source: str
    title: str
    heading: str
    url: str
    text: str
    score: float
    heading_path: tuple[str, ...] = field(default=())
    similarity: float = 0.0  # cosine between the question and the passage (dense model)
    book: str = ""  # the book (source) it comes from; "" in an index not yet labelled

    def citation(self, n: int, snippet_chars: int = 240) -> dict[str, Any]:
        """The passage as citation number n."""
        snippet = " ".join(self.text.split())
        if len(snippet) > snippet_chars:
            snippet = snippet[: snippet_chars - 1].rsplit(" ", 1)[0] + "…"
        return {
            "n": n,
            "title": self.title,
            "heading": self.heading,
            "url": self.url,
            "source": self.source,
            "snippet": snippet,
            "score": round(self.score, 4),
        }


def search_result(passage: Passage) -> dict[str, Any]:
    """A passage as search tools show it."""
    return {
        "book": passage.book,
        "source": passage.source,
        "heading": passage.heading,
        "title": passage.title,
        "url": passage.url,
        "text": passage.text,
        "score": round(passage.score, 4),
    }
