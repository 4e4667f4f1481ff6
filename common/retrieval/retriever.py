"""Retrieval as chat and tools use it: search, then decide whether the book covers the question."""

from __future__ import annotations

import time
from dataclasses import dataclass

from common.retrieval.guardrail import Coverage, Guardrail, Vocabulary
from common.retrieval.passages import Passage
from common.retrieval.search import SearchMode, TextbookSearch

# An edit that keeps the chunk count changes no cheap signal, so rebuild now and then too.
VOCABULARY_MAX_AGE_S = 30.0


@dataclass(frozen=True)
class Retrieval:
    passages: list[Passage]
    coverage: Coverage


class Retriever:
    """Search plus the coverage guardrail, with the book's vocabulary cached per index state."""

    def __init__(self, search: TextbookSearch, guardrail: Guardrail) -> None:
        self.search = search
        self.guardrail = guardrail
        self._vocabulary: tuple[tuple[str, int], Vocabulary] | None = None
        self._built_at = 0.0

    def vocabulary(self) -> Vocabulary:
        """The book's terms, rebuilt when the index changed."""
        index = self.search.index
        # Read through the alias: a rebuild may drop the old collection at any moment.
        collection = index.current_collection() or ""
        state = (collection, index.count() if collection else 0)
        now = time.monotonic()
        stale = self._vocabulary is None or now - self._built_at > VOCABULARY_MAX_AGE_S
        if stale or self._vocabulary is None or self._vocabulary[0] != state:
            texts = index.all_texts(index.alias) if collection else []
            self._vocabulary = (state, Vocabulary(texts))
            self._built_at = now
        return self._vocabulary[1]

    def retrieve(
        self, query: str, k: int, path_prefix: str | None = None, mode: SearchMode | None = None
    ) -> Retrieval:
        """The best passages and whether they cover the query."""
        passages = self.search.search(query, k, path_prefix, mode)
        return Retrieval(passages, self.guardrail.assess(query, passages, self.vocabulary()))
