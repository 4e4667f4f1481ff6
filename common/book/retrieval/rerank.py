"""A second look at the fused candidates: re-order them with another model before cutting to k.

A reranker sees the query and the first stage's candidates (already fused by RRF) and returns
them in a new order. `DenseReranker` scores each candidate with a second embedder and fuses that
order with the first stage's by reciprocal rank, so one model's blind spot does not drop a
passage the other ranks first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from common.book.retrieval.embeddings import Embedder
from common.book.retrieval.passages import Passage


class Reranker(Protocol):
    """Re-orders candidate passages for a query; the result holds the same passages."""

    name: str

    def rerank(self, query: str, passages: Sequence[Passage]) -> list[Passage]:
        """The passages, best first, each with its reranker score in `score`."""
        ...


def rrf_order(rankings: Sequence[Sequence[int]], k: int) -> list[tuple[int, float]]:
    """Fuse rankings of the same items (each a list of item indices, best first) by RRF."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


class DenseReranker:
    """Scores candidates with a second embedder; fuses its order with the first stage's by RRF."""

    def __init__(self, embedder: Embedder, rrf_k: int = 2, fuse: bool = True) -> None:
        self.embedder = embedder
        self.rrf_k = rrf_k
        self.fuse = fuse
        self.name = f"{embedder.name}{'+rrf' if fuse else ''}"

    def rerank(self, query: str, passages: Sequence[Passage]) -> list[Passage]:
        """The passages re-ordered; `score` is the fused score (or the cosine without fusion)."""
        if not passages:
            return []
        query_vector = self.embedder.embed_query(query)
        vectors = self.embedder.embed_documents([_text(p) for p in passages])
        cosines = [_dot(query_vector, v) for v in vectors]
        by_model = sorted(range(len(passages)), key=lambda i: (-cosines[i], i))
        if not self.fuse:
            return [replace(passages[i], score=cosines[i]) for i in by_model]
        fused = rrf_order([list(range(len(passages))), by_model], self.rrf_k)
        return [replace(passages[i], score=score) for i, score in fused]


def _text(passage: Passage) -> str:
    # What the first stage embedded: the heading path (led by the title) and the body.
    path = passage.heading_path or (passage.title,)
    if path[:1] != (passage.title,):
        path = (passage.title, *path)
    return " > ".join(path) + "\n" + passage.text
