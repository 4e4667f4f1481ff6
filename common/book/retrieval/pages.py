"""The reader's current page: which indexed page and chapter a widget's `page_url` names.

Citation URLs carry the book's base ("/docs/module-1/..."), so the page is found by matching
the URL's path (no host, query or anchor) against the passages' `url` paths, not source paths.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

# Reciprocal-rank weights of the page's and the chapter's own ranking next to the global one
# (weight 1); chosen on bench/conversation_retrieval.py's page cases (see
# docs/ingestion-and-retrieval.md, "Page-aware retrieval").
PAGE_WEIGHT = 0.3
CHAPTER_WEIGHT = 0.1


@dataclass(frozen=True)
class Preference:
    """Passages under `prefix` (a source file or folder) of `book` get an extra ranking."""

    book: str
    prefix: str
    weight: float


def page_path(url: str) -> str:
    """The path of a page URL, decoded, without query, anchor or trailing slash."""
    path = unquote(urlsplit(url.strip()).path)
    return path.rstrip("/") or "/"


class PageMap:
    """Page path -> (book, source) of every indexed page."""

    def __init__(self, pages: Iterable[tuple[str, str, str]]) -> None:
        self.pages = {page_path(url): (book, source) for url, book, source in pages if url}

    def page(self, page_url: str | None) -> tuple[str, str] | None:
        """The (book, source) of the page the URL shows, if it is indexed."""
        return self.pages.get(page_path(page_url)) if page_url else None

    def preferences(
        self,
        page_url: str | None,
        page_weight: float = PAGE_WEIGHT,
        chapter_weight: float = CHAPTER_WEIGHT,
    ) -> list[Preference]:
        """Prefer the reader's page and its chapter (its folder); none for an unknown page."""
        found = self.page(page_url)
        if found is None:
            return []
        book, source = found
        preferred = [Preference(book, source, page_weight)]
        folder = PurePosixPath(source).parent.as_posix()
        if folder != "." and chapter_weight > 0:  # a top-level page's folder is the whole book
            preferred.append(Preference(book, folder, chapter_weight))
        return [p for p in preferred if p.weight > 0]
