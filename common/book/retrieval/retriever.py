"""Retrieval as chat and tools use it: search, then decide whether the book covers the question."""

from __future__ import annotations

import time
from dataclasses import dataclass

from common.book.retrieval.guardrail import Coverage, Guardrail, Vocabulary
from common.book.retrieval.pages import PageMap
from common.book.retrieval.passages import Passage
from common.book.retrieval.search import SearchMode, TextbookSearch

# An edit that keeps the chunk count changes no cheap signal, so rebuild now and then too.
VOCABULARY_MAX_AGE_S = 30.0


@dataclass(frozen=True)
class Retrieval:
    passages: list[Passage]
    coverage: Coverage


class Retriever:
    """Search plus the coverage guardrail; the book's vocabulary and pages cached per index."""

    def __init__(self, search: TextbookSearch, guardrail: Guardrail) -> None:
        self.search = search
        self.guardrail = guardrail
        self._vocabulary: tuple[tuple[str, int], Vocabulary, PageMap] | None = None
        self._built_at = 0.0

    def vocabulary(self) -> Vocabulary:
        """The book's terms, rebuilt when the index changed."""
        return self._book()[1]

    def pages(self) -> PageMap:
        """The book's pages by URL path, rebuilt when the index changed."""
        return self._book()[2]

    def _book(self) -> tuple[tuple[str, int], Vocabulary, PageMap]:
        index = self.search.index
        # Read through the alias: a rebuild may drop the old collection at any moment.
        collection = index.current_collection() or ""
        state = (collection, index.count() if collection else 0)
        now = time.monotonic()
        stale = self._vocabulary is None or now - self._built_at > VOCABULARY_MAX_AGE_S
        if stale or self._vocabulary is None or self._vocabulary[0] != state:
            texts = index.all_texts(index.alias) if collection else []
            pages = index.all_pages(index.alias) if collection else set()
            self._vocabulary = (state, Vocabulary(texts), PageMap(pages))
            self._built_at = now
        return self._vocabulary

    def retrieve(
        self,
        query: str,
        k: int,
        path_prefix: str | None = None,
        mode: SearchMode | None = None,
        page_url: str | None = None,
        dense: list[float] | None = None,
    ) -> Retrieval:
        """The best passages and whether they cover the query; the reader's page preferred.

        `dense`: the query's embedding, when the caller has it already.
        """
        prefer = self.pages().preferences(page_url) if page_url else []
        passages = self.search.search(query, k, path_prefix, mode, prefer=prefer, dense=dense)
        return Retrieval(passages, self.guardrail.assess(query, passages, self.vocabulary()))
