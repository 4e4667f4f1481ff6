"""The textbook index in Qdrant: versioned collections behind an alias, dense + BM25 vectors.

Chat always reads through the alias. A full rebuild writes a new collection and then moves
the alias in one atomic operation, so readers never see a half-built index; the old
collection is dropped afterwards. Incremental ingests write to the alias's collection.

Every point belongs to a book (its `book` payload field; common/book/books.py names books): one
collection holds every book, and each write or delete names the book it touches. Points
written before books existed have no `book` field until `label_unlabelled` gives them one.
"""

from __future__ import annotations

import re
import threading
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from qdrant_client import QdrantClient, models

from common.book.retrieval.sparse import SparseVector, document_vector
from common.platform.settings import Settings

DENSE_VECTOR = "dense"
SPARSE_VECTOR = "bm25"
_POINT_NAMESPACE = uuid.UUID("6f0f3c1e-8a51-4a52-9d8e-2c1b0b7a4d10")
_UNLABELLED = models.Filter(
    must=[models.IsEmptyCondition(is_empty=models.PayloadField(key="book"))]
)


def make_qdrant(settings: Settings) -> QdrantClient:
    """A Qdrant server client when QDRANT_URL is set, else local mode under var/qdrant."""
    if settings.qdrant_url:
        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return QdrantClient(url=settings.qdrant_url, api_key=key, timeout=10)
    settings.qdrant_path.mkdir(parents=True, exist_ok=True)
    return QdrantClient(path=str(settings.qdrant_path))


def point_id(book: str, source: str, index: int) -> str:
    """A deterministic point id, so a redelivered ingest overwrites instead of duplicating.

    The book is part of it, so two books holding the same relative path never share a point
    (a NUL cannot occur in a book name or a path, so no two pairs give the same text).
    """
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{book}\x00{source}#{index}"))


def path_prefixes(source: str) -> list[str]:
    """Every folder prefix of a source path and the path itself, for prefix filters."""
    parts = PurePosixPath(source).parts
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


@dataclass(frozen=True)
class IndexedChunk:
    book: str
    source: str
    index: int
    title: str
    url: str
    heading_path: tuple[str, ...]
    text: str
    content_hash: str
    document_hash: str

    def embedding_text(self) -> str:
        """What retrieval sees: the heading path (led by the title) and the body."""
        path = (
            self.heading_path
            if self.heading_path[:1] == (self.title,)
            else (self.title, *self.heading_path)
        )
        return " > ".join(path) + "\n" + self.text


def sparse_vector(vector: SparseVector) -> models.SparseVector:
    """Our sparse vector in Qdrant's form."""
    return models.SparseVector(indices=list(vector.indices), values=list(vector.values))


def match(key: str, value: str, **more: str) -> models.Filter:
    """A filter on keyword payload fields, all of which must match."""
    fields = {key: value, **more}
    return models.Filter(
        must=[
            models.FieldCondition(key=name, match=models.MatchValue(value=wanted))
            for name, wanted in fields.items()
        ]
    )


@dataclass(frozen=True)
class StoredPoint:
    """A point as a copy needs it: id, payload and dense vector."""

    id: str
    payload: dict[str, Any]
    dense: list[float]

    def chunk(self) -> IndexedChunk:
        """The chunk the point was written from (its payload holds every field)."""
        p = self.payload
        return IndexedChunk(
            book=p.get("book", ""),
            source=p["source"],
            index=p["index"],
            title=p["title"],
            url=p["url"],
            heading_path=tuple(p.get("heading_path", ())),
            text=p["text"],
            content_hash=p["content_hash"],
            document_hash=p["document_hash"],
        )


class TextbookIndex:
    """Reads and writes the textbook's collections; thread-safe for local mode."""

    def __init__(self, client: QdrantClient, alias: str, embedder_name: str, dimension: int):
        self.client = client
        self.alias = alias
        self.embedder_name = embedder_name
        self.dimension = dimension
        self.lock = threading.RLock()

    # Collections and the alias

    def current_collection(self) -> str | None:
        """The collection the alias points at, if any."""
        with self.lock:
            for alias in self.client.get_aliases().aliases:
                if alias.alias_name == self.alias:
                    return str(alias.collection_name)
        return None

    def matches_embedder(self, collection: str) -> bool:
        """Whether a collection was built by this embedder at this vector size."""
        return collection.startswith(self._prefix())

    def _prefix(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.embedder_name.lower()).strip("-")
        return f"{self.alias}__{slug}-{self.dimension}__v"

    def create_version(self) -> str:
        """A new, empty collection for a full build (not yet visible to readers)."""
        with self.lock:
            existing = [c.name for c in self.client.get_collections().collections]
            versions = [
                int(n.rsplit("__v", 1)[1])
                for n in existing
                if n.startswith(self._prefix()) and n.rsplit("__v", 1)[1].isdigit()
            ]
            name = f"{self._prefix()}{max(versions, default=0) + 1}"
            self.client.create_collection(
                name,
                vectors_config={
                    DENSE_VECTOR: models.VectorParams(
                        size=self.dimension, distance=models.Distance.COSINE
                    )
                },
                sparse_vectors_config={
                    SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
            )
            with warnings.catch_warnings():
                # Local mode ignores payload indexes (and says so); a server uses them.
                warnings.simplefilter("ignore", UserWarning)
                for field in ("book", "source", "prefixes"):
                    self.client.create_payload_index(name, field, models.PayloadSchemaType.KEYWORD)
            return name

    def publish(self, collection: str) -> None:
        """Point the alias at `collection` atomically, then drop what it pointed at before."""
        with self.lock:
            previous = self.current_collection()
            operations: list[Any] = []
            if previous is not None:
                operations.append(
                    models.DeleteAliasOperation(
                        delete_alias=models.DeleteAlias(alias_name=self.alias)
                    )
                )
            operations.append(
                models.CreateAliasOperation(
                    create_alias=models.CreateAlias(
                        collection_name=collection, alias_name=self.alias
                    )
                )
            )
            self.client.update_collection_aliases(change_aliases_operations=operations)
            if previous is not None and previous != collection:
                self.client.delete_collection(previous)

    def drop(self, collection: str) -> None:
        """Delete a collection (an abandoned build)."""
        with self.lock:
            self.client.delete_collection(collection)

    # Writing

    def _payloads(self, collection: str, fields: list[str]) -> Iterator[dict[str, Any]]:
        """The chosen payload fields of every point, page by page."""
        offset: Any = None
        while True:
            with self.lock:
                points, offset = self.client.scroll(
                    collection, limit=1024, offset=offset, with_payload=fields, with_vectors=False
                )
            yield from (point.payload or {} for point in points)
            if offset is None:
                return

    def document_hashes(self, collection: str, book: str) -> dict[str, str]:
        """Source path -> content hash of every document of one book in the collection."""
        return {
            p["source"]: p["document_hash"]
            for p in self._payloads(collection, ["book", "source", "document_hash"])
            if p.get("book") == book
        }

    def stored_vectors(self, collection: str, book: str, source: str) -> dict[str, list[float]]:
        """Chunk content hash -> dense vector for one document, to reuse unchanged chunks."""
        with self.lock:
            points, _ = self.client.scroll(
                collection,
                scroll_filter=match("book", book, source=source),
                limit=10_000,
                with_payload=["content_hash"],
                with_vectors=[DENSE_VECTOR],
            )
        vectors: dict[str, list[float]] = {}
        for point in points:
            vector = point.vector.get(DENSE_VECTOR) if isinstance(point.vector, dict) else None
            if point.payload and isinstance(vector, list):
                vectors[point.payload["content_hash"]] = [float(x) for x in vector]  # type: ignore[arg-type]
        return vectors

    def replace_document(
        self,
        collection: str,
        book: str,
        source: str,
        chunks: Sequence[IndexedChunk],
        dense: Sequence[list[float]],
    ) -> None:
        """Swap a book's document's points for these chunks and their dense vectors."""
        points = [
            _point(point_id(chunk.book, chunk.source, chunk.index), chunk, vector)
            for chunk, vector in zip(chunks, dense, strict=True)
        ]
        with self.lock:
            self.delete_document(collection, book, source)
            if points:
                self.client.upsert(collection, points=points, wait=True)

    def delete_document(self, collection: str, book: str, source: str) -> None:
        """Remove every point of one source file of one book."""
        self._delete(collection, match("book", book, source=source))

    def delete_book(self, collection: str, book: str) -> None:
        """Remove every point of one book."""
        self._delete(collection, match("book", book))

    def _delete(self, collection: str, selection: models.Filter) -> None:
        with self.lock:
            self.client.delete(
                collection, points_selector=models.FilterSelector(filter=selection), wait=True
            )

    def has_document(self, collection: str, book: str, source: str) -> bool:
        """Whether one source file of one book has any point in the collection."""
        with self.lock:
            found = self.client.count(
                collection, count_filter=match("book", book, source=source), exact=True
            )
        return found.count > 0

    def unlabelled(self, collection: str) -> int:
        """How many points have no `book` field (written before books existed)."""
        with self.lock:
            return self.client.count(collection, count_filter=_UNLABELLED, exact=True).count

    def label_unlabelled(self, collection: str, book: str) -> None:
        """Give every point without a `book` field to `book`."""
        with self.lock:
            self.client.set_payload(
                collection, payload={"book": book}, points=_UNLABELLED, wait=True
            )

    def other_books_points(self, collection: str, book: str) -> Iterator[list[StoredPoint]]:
        """Every point not of `book`, a page at a time, with payload and dense vector."""
        others = models.Filter(
            must_not=[models.FieldCondition(key="book", match=models.MatchValue(value=book))]
        )
        offset: Any = None
        while True:
            with self.lock:
                points, offset = self.client.scroll(
                    collection,
                    scroll_filter=others,
                    limit=256,
                    offset=offset,
                    with_payload=True,
                    with_vectors=[DENSE_VECTOR],
                )
            page = [StoredPoint(str(p.id), dict(p.payload or {}), _dense(p.vector)) for p in points]
            if page:
                yield page
            if offset is None:
                return

    def write_copies(
        self, collection: str, points: Sequence[StoredPoint], dense: Sequence[list[float]]
    ) -> None:
        """Write copied points under their own ids, with these dense vectors."""
        copies = [
            _point(point.id, point.chunk(), vector, point.payload)
            for point, vector in zip(points, dense, strict=True)
        ]
        if copies:
            with self.lock:
                self.client.upsert(collection, points=copies, wait=True)

    def all_texts(self, collection: str) -> list[str]:
        """Title, headings and text of every chunk (for the book's vocabulary)."""
        return [
            " ".join([p.get("title", ""), *p.get("heading_path", []), p.get("text", "")])
            for p in self._payloads(collection, ["title", "heading_path", "text"])
        ]

    def all_pages(self, collection: str) -> set[tuple[str, str, str]]:
        """(url, book, source) of every page in the collection (to place a reader's page)."""
        return {
            (p.get("url", ""), p.get("book", ""), p.get("source", ""))
            for p in self._payloads(collection, ["url", "book", "source"])
        }

    def page_titles(self, collection: str) -> dict[str, tuple[str, str]]:
        """URL -> (title, source) of every page in the collection (for the author's insights)."""
        return {
            p["url"]: (p.get("title", ""), p.get("source", ""))
            for p in self._payloads(collection, ["url", "title", "source"])
            if p.get("url")
        }

    def count(self, collection: str | None = None) -> int:
        """Number of points (chunks) in a collection, or behind the alias."""
        with self.lock:
            return self.client.count(collection or self.alias, exact=True).count


def _dense(vector: Any) -> list[float]:
    stored = vector.get(DENSE_VECTOR) if isinstance(vector, dict) else None
    return [float(x) for x in stored] if isinstance(stored, list) else []


def _point(
    id_: str,
    chunk: IndexedChunk,
    dense: list[float],
    payload: dict[str, Any] | None = None,
) -> models.PointStruct:
    return models.PointStruct(
        id=id_,
        vector={
            DENSE_VECTOR: dense,
            SPARSE_VECTOR: sparse_vector(document_vector(chunk.embedding_text())),
        },
        payload=payload if payload is not None else _payload(chunk),
    )


def _payload(chunk: IndexedChunk) -> dict[str, Any]:
    return {
        "book": chunk.book,
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
