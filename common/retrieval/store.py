"""The textbook index in Qdrant: a versioned collection behind an alias, BM25 sparse vectors."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from qdrant_client import QdrantClient, models

from common.retrieval.passages import Passage
from common.retrieval.sparse import document_vector, query_vector
from common.settings import Settings

SPARSE_VECTOR = "bm25"
_POINT_NAMESPACE = uuid.UUID("6f0f3c1e-8a51-4a52-9d8e-2c1b0b7a4d10")


def make_qdrant(settings: Settings) -> QdrantClient:
    """A Qdrant server client when QDRANT_URL is set, else local mode under var/qdrant."""
    if settings.qdrant_url:
        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return QdrantClient(url=settings.qdrant_url, api_key=key, timeout=10)
    settings.qdrant_path.mkdir(parents=True, exist_ok=True)
    return QdrantClient(path=str(settings.qdrant_path))


def point_id(source: str, index: int) -> str:
    """A deterministic point id, so a redelivered ingest overwrites instead of duplicating."""
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{source}#{index}"))


def path_prefixes(source: str) -> list[str]:
    """Every folder prefix of a source path and the path itself, for prefix filters."""
    parts = PurePosixPath(source).parts
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


@dataclass(frozen=True)
class IndexedChunk:
    source: str
    index: int
    title: str
    url: str
    heading_path: tuple[str, ...]
    text: str
    content_hash: str
    document_hash: str

    def sparse_text(self) -> str:
        """What BM25 sees: the title and heading path help as much as the body."""
        return " ".join((self.title, *self.heading_path, self.text))


class TextbookIndex:
    """Reads and writes the textbook's points; thread-safe for local mode."""

    def __init__(self, client: QdrantClient, alias: str) -> None:
        self.client = client
        self.alias = alias
        self._lock = threading.RLock()

    def ensure_collection(self) -> None:
        """Create the first versioned collection and its alias if the alias is missing."""
        with self._lock:
            aliases = {a.alias_name for a in self.client.get_aliases().aliases}
            if self.alias in aliases:
                return
            physical = f"{self.alias}_v1"
            if not self.client.collection_exists(physical):
                self.client.create_collection(
                    physical,
                    vectors_config={},
                    sparse_vectors_config={
                        SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)
                    },
                )
            self.client.update_collection_aliases(
                change_aliases_operations=[
                    models.CreateAliasOperation(
                        create_alias=models.CreateAlias(
                            collection_name=physical, alias_name=self.alias
                        )
                    )
                ]
            )

    def document_hashes(self) -> dict[str, str]:
        """Source path -> content hash of every document in the index."""
        hashes: dict[str, str] = {}
        offset: Any = None
        with self._lock:
            while True:
                points, offset = self.client.scroll(
                    self.alias,
                    limit=512,
                    offset=offset,
                    with_payload=["source", "document_hash"],
                    with_vectors=False,
                )
                for point in points:
                    payload = point.payload or {}
                    hashes[payload["source"]] = payload["document_hash"]
                if offset is None:
                    return hashes

    def replace_document(self, source: str, chunks: Sequence[IndexedChunk]) -> None:
        """Swap a document's points for these chunks."""
        points = [
            models.PointStruct(
                id=point_id(chunk.source, chunk.index),
                vector={SPARSE_VECTOR: _sparse(document_vector(chunk.sparse_text()))},
                payload=_payload(chunk),
            )
            for chunk in chunks
        ]
        with self._lock:
            self.delete_document(source)
            if points:
                self.client.upsert(self.alias, points=points, wait=True)

    def delete_document(self, source: str) -> None:
        """Remove every point of one source file."""
        with self._lock:
            self.client.delete(
                self.alias,
                points_selector=models.FilterSelector(filter=_match("source", source)),
                wait=True,
            )

    def count(self) -> int:
        """Number of points (chunks) in the index."""
        with self._lock:
            return self.client.count(self.alias, exact=True).count

    def search(self, query: str, k: int = 5, path_prefix: str | None = None) -> list[Passage]:
        """The k best passages for the query, optionally within a folder or file."""
        vector = query_vector(query)
        if not vector.indices:
            return []
        query_filter = _match("prefixes", path_prefix.strip("/")) if path_prefix else None
        with self._lock:
            response = self.client.query_points(
                self.alias,
                query=_sparse(vector),
                using=SPARSE_VECTOR,
                limit=k,
                query_filter=query_filter,
                with_payload=True,
            )
        return [_passage(point.payload or {}, point.score) for point in response.points]


def _sparse(vector: Any) -> models.SparseVector:
    return models.SparseVector(indices=list(vector.indices), values=list(vector.values))


def _match(key: str, value: str) -> models.Filter:
    return models.Filter(
        must=[models.FieldCondition(key=key, match=models.MatchValue(value=value))]
    )


def _payload(chunk: IndexedChunk) -> dict[str, Any]:
    return {
        "source": chunk.source,
        "prefixes": path_prefixes(chunk.source),
        "index": chunk.index,
        "title": chunk.title,
        "url": chunk.url,
        "heading_path": list(chunk.heading_path),
        "heading": chunk.heading_path[-1] if chunk.heading_path else chunk.title,
        "text": chunk.text,
        "content_hash": chunk.content_hash,
        "document_hash": chunk.document_hash,
    }


def _passage(payload: dict[str, Any], score: float) -> Passage:
    return Passage(
        source=payload["source"],
        title=payload["title"],
        heading=payload["heading"],
        url=payload["url"],
        text=payload["text"],
        score=float(score),
        heading_path=tuple(payload.get("heading_path", ())),
    )
