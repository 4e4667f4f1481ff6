"""An embedder that remembers the vectors of its recent queries.

A chat job that waits for the model's rate limit is claimed twice: once to look it up in the
answer cache and book its slot, once to answer it. Demo-day traffic also asks the same few
questions again and again. Either way the question's text is the same, so its vector is too:
embedding it once saves the largest share of a worker's CPU per question (a MiniLM query costs
more than a retrieval over the book), and a model call per query with `EMBEDDINGS=openai`.

Only queries are remembered, in this process's memory, as float32 arrays (1.5 KB each for
MiniLM); documents go straight to the embedder.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from common.book.retrieval.embeddings import Embedder


class RecentQueries:
    """Wraps an embedder: `embed_query` of a recently seen text costs a dictionary lookup."""

    def __init__(self, embedder: Embedder, size: int) -> None:
        self.embedder = embedder
        self.name, self.dimension = embedder.name, embedder.dimension
        self.size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed passages (never remembered: each is embedded once per ingest anyway)."""
        return self.embedder.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        """The query's vector: remembered, or embedded now and remembered."""
        with self._lock:
            vector = self._vectors.get(text)
            if vector is not None:
                self._vectors.move_to_end(text)
                self.hits += 1
                return vector.tolist()
            self.misses += 1
        # Outside the lock: two threads embedding at once must not wait for each other.
        vector = np.asarray(self.embedder.embed_query(text), dtype=np.float32)
        with self._lock:
            self._vectors[text] = vector
            self._vectors.move_to_end(text)
            while len(self._vectors) > self.size:
                self._vectors.popitem(last=False)
        # The stored precision on every call, so a text's vector never changes with the memory.
        return vector.tolist()
