"""Embeddings from OpenAI's API, through the same rate-limited client as chat."""

from __future__ import annotations

from collections.abc import Sequence

from common.llm.client import LLMClient
from common.llm.metrics import CallStats

OPENAI_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072}


class OpenAIEmbedder:
    """Embeddings from the provider through the shared rate-limited client, in batches."""

    def __init__(self, client: LLMClient, model: str, batch_size: int = 64) -> None:
        self.client = client
        self.model = model
        self.name = model
        self.dimension = OPENAI_DIMENSIONS.get(model, 1536)
        self.batch_size = batch_size
        self.stats = CallStats()

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors for the texts, in order, one request per batch."""
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            vectors.extend(self.client.embed(self.model, batch, self.stats))
        return vectors

    def embed_query(self, text: str) -> list[float]:
        """The vector of one query."""
        return self.client.embed(self.model, [text], self.stats)[0]
