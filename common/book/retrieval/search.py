"""Searching the textbook: dense, sparse (BM25) or hybrid (reciprocal rank fusion)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from qdrant_client import models

from common.book.retrieval.embeddings import Embedder
from common.book.retrieval.pages import Preference
from common.book.retrieval.passages import Passage
from common.book.retrieval.rerank import Reranker
from common.book.retrieval.sparse import query_vector
from common.book.retrieval.store import (
    DENSE_VECTOR,
    SPARSE_VECTOR,
    TextbookIndex,
    match,
    sparse_vector,
)

SearchMode = Literal["dense", "sparse", "hybrid"]
SEARCH_MODES: tuple[SearchMode, ...] = ("dense", "sparse", "hybrid")


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


class TextbookSearch:
    """Queries the collection behind the alias; each passage carries its dense similarity."""

    def __init__(
        self,
        index: TextbookIndex,
        embedder: Embedder,
        mode: SearchMode = "hybrid",
        rrf_k: int = 2,
        candidates: int = 20,
        reranker: Reranker | None = None,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.mode = mode
        self.rrf_k = rrf_k
        self.candidates = candidates
        self.reranker = reranker

    def search(
        self,
        query: str,
        k: int = 5,
        path_prefix: str | None = None,
        mode: SearchMode | None = None,
        book: str | None = None,
        prefer: Sequence[Preference] = (),
        dense: list[float] | None = None,
    ) -> list[Passage]:
        """The k best passages for the query from every book, or within one book, folder or file.

        `prefer` adds rankings restricted to those pages or folders, fused with the global one
        by weighted RRF: they rise, and nothing else is filtered out. `dense` is the query's
        embedding when the caller computed it already.
        """
        mode = mode or self.mode
        if not query.strip() or self.index.current_collection() is None:
            return []
        query_filter = _filter(path_prefix, book)
        if dense is None:
            dense = self.embedder.embed_query(query)
        sparse = query_vector(query)
        if mode == "sparse" and not sparse.indices:
            return []
        # With a reranker, the first stage hands it every fused candidate, then k are kept.
        limit = max(self.candidates, k) if self.reranker else k
        request = self._query(mode, dense, sparse, query_filter, limit)
        if prefer:
            request = self._preferring(request, mode, dense, sparse, query_filter, limit, prefer)
        with self.index.lock:
            response = self.index.client.query_points(
                self.index.alias,
                **request,
                limit=limit,
                with_payload=True,
                with_vectors=[DENSE_VECTOR],
            )
        passages = [_passage(point, dense) for point in response.points]
        if self.reranker:
            return self.reranker.rerank(query, passages)[:k]
        return passages

    def _query(
        self,
        mode: SearchMode,
        dense: list[float],
        sparse: Any,
        query_filter: models.Filter | None,
        k: int,
    ) -> dict[str, Any]:
        if mode == "dense":
            return {"query": dense, "using": DENSE_VECTOR, "query_filter": query_filter}
        if mode == "sparse":
            return {
                "query": sparse_vector(sparse),
                "using": SPARSE_VECTOR,
                "query_filter": query_filter,
            }
        limit = max(self.candidates, k)
        prefetch = [
            models.Prefetch(query=dense, using=DENSE_VECTOR, limit=limit, filter=query_filter)
        ]
        if sparse.indices:
            prefetch.append(
                models.Prefetch(
                    query=sparse_vector(sparse),
                    using=SPARSE_VECTOR,
                    limit=limit,
                    filter=query_filter,
                )
            )
        return {"prefetch": prefetch, "query": models.RrfQuery(rrf=models.Rrf(k=self.rrf_k))}

    def _preferring(
        self,
        query: dict[str, Any],
        mode: SearchMode,
        dense: list[float],
        sparse: Any,
        query_filter: models.Filter | None,
        k: int,
        prefer: Sequence[Preference],
    ) -> dict[str, Any]:
        """The query as one weighted ranking among the preferred pages' own rankings."""
        limit = max(self.candidates, k)
        rankings = [_prefetch(query, limit)]
        weights = [1.0]
        for preference in prefer:
            narrowed = self._query(mode, dense, sparse, _within(query_filter, preference), k)
            rankings.append(_prefetch(narrowed, limit))
            weights.append(preference.weight)
        rrf = models.Rrf(k=self.rrf_k, weights=weights)
        return {"prefetch": rankings, "query": models.RrfQuery(rrf=rrf)}


def _prefetch(query: dict[str, Any], limit: int) -> models.Prefetch:
    """A top-level query as a prefetch (whose filter is spelt `filter`)."""
    arguments = {"filter" if key == "query_filter" else key: v for key, v in query.items()}
    return models.Prefetch(**arguments, limit=limit)


def _within(query_filter: models.Filter | None, preference: Preference) -> models.Filter:
    """The search's own filter narrowed to one preferred page or folder."""
    narrowed = match("prefixes", preference.prefix)
    if preference.book:
        narrowed = match("book", preference.book, prefixes=preference.prefix)
    if query_filter is not None:
        narrowed.must = [*_conditions(narrowed), query_filter]
    return narrowed


def _conditions(query_filter: models.Filter) -> list[Any]:
    must = query_filter.must
    return list(must) if isinstance(must, list) else [must] if must is not None else []


def _filter(path_prefix: str | None, book: str | None) -> models.Filter | None:
    if book and path_prefix:
        return match("book", book, prefixes=path_prefix.strip("/"))
    if book:
        return match("book", book)
    return match("prefixes", path_prefix.strip("/")) if path_prefix else None


def _passage(point: Any, query_dense: list[float]) -> Passage:
    payload = point.payload or {}
    vectors = point.vector if isinstance(point.vector, dict) else {}
    stored = vectors.get(DENSE_VECTOR)
    similarity = cosine(query_dense, stored) if isinstance(stored, list) else 0.0
    return Passage(
        source=payload["source"],
        title=payload["title"],
        heading=payload["heading"],
        url=payload["url"],
        text=payload["text"],
        score=float(point.score),
        heading_path=tuple(payload.get("heading_path", ())),
        similarity=similarity,
        book=payload.get("book", ""),
    )
