"""Ingesting a textbook folder as one book: parse, chunk, embed and index only what changed.

An incremental run compares each file's hash with the book's pages in the index and re-embeds
only changed chunks (unchanged chunks of a changed file keep their vectors); it adds, changes
and deletes that book's pages only. A full run, or a change of embedding model, builds a new
collection with this book from its folder and every other book copied from the current
collection (their vectors reused, or re-embedded from the stored text after a model change),
and swaps the alias once it is complete. A document run re-embeds one page into the current
collection; a removal deletes one book's points. Every run reads only under INGEST_ROOTS
(common/book/ingest/sources.py), and a folder that yields no page never empties its book unless
the job allows it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from common.book.books import DEFAULT_BOOK
from common.book.ingest.chunking import chunk_document
from common.book.ingest.documents import DocumentError, parse_markdown
from common.book.ingest.sources import (
    LinkRefused,
    SourceFile,
    find_markdown_files,
    locate_document,
    read_source,
)
from common.book.retrieval.embeddings import Embedder
from common.book.retrieval.store import IndexedChunk, TextbookIndex
from common.jobs.ingest_jobs import (
    IngestReport,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
EMPTY_SOURCE = (
    "the folder holds no Markdown page that could be ingested; the index was left as it was "
    "(send allow_empty to replace it with an empty one)"
)


class IngestRefused(Exception):
    """The run must not change the index as asked; the job fails with `code`."""

    def __init__(self, code: str, message: str, report: IngestReport | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.report = report


def _chunks(
    raw: bytes, book: str, source: str, base_url: str, document_hash: str
) -> list[IndexedChunk]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(source, f"not valid UTF-8: {exc}") from exc
    document = parse_markdown(text, source, base_url)
    return [
        IndexedChunk(
            book=book,
            source=source,
            index=chunk.index,
            title=chunk.title,
            url=chunk.url,
            heading_path=chunk.heading_path,
            text=chunk.text,
            content_hash=chunk.content_hash,
            document_hash=document_hash,
        )
        for chunk in chunk_document(document)
    ]


def _embed(
    index: TextbookIndex,
    embedder: Embedder,
    collection: str,
    book: str,
    source: str,
    chunks: list[IndexedChunk],
    reuse: bool,
    report: IngestReport,
) -> list[list[float]]:
    known = index.stored_vectors(collection, book, source) if reuse else {}
    todo = [c for c in chunks if c.content_hash not in known]
    fresh = embedder.embed_documents([c.embedding_text() for c in todo]) if todo else []
    report.embeddings_computed += len(fresh)
    known.update({c.content_hash: v for c, v in zip(todo, fresh, strict=True)})
    return [known[c.content_hash] for c in chunks]


@dataclass
class _TreeRun:
    """One run of `ingest_tree`: where it writes and what it has done so far."""

    index: TextbookIndex
    embedder: Embedder
    collection: str
    book: str
    base_url: str
    allowed: list[Path]
    indexed: dict[str, str]  # source -> document hash, as the index had them
    report: IngestReport


def ingest_tree(
    index: TextbookIndex,
    embedder: Embedder,
    root: Path,
    base_url: str = "/",
    *,
    book: str = DEFAULT_BOOK,
    full: bool = False,
    allow_empty: bool = False,
    roots: list[Path] | None = None,
    on_progress: Callable[[IngestReport], None] | None = None,
) -> IngestReport:
    """Bring the book's pages in the index in line with the folder and return what was done.

    Other books are never changed (a rebuild copies them). Only files under `roots` (default:
    the folder) are read; links leaving them are listed in `failures`. If no page could be
    read and `allow_empty` is false, IngestRefused is raised and the index is left as it was.
    """
    started = time.monotonic()
    allowed = roots if roots is not None else [root]
    walk = find_markdown_files(root, allowed)
    report = IngestReport(files_total=len(walk.files) + len(walk.refused))
    report.files_seen = len(walk.refused)
    report.failures.update(walk.refused)
    if not walk.files and not allow_empty:
        raise IngestRefused("empty_source", EMPTY_SOURCE, report)
    current = index.current_collection()
    report.rebuilt = full or current is None or not index.matches_embedder(current)
    collection = index.create_version() if report.rebuilt else str(current)
    report.collection = collection
    indexed = {} if report.rebuilt else index.document_hashes(collection, book)
    run = _TreeRun(index, embedder, collection, book, base_url, allowed, indexed, report)
    try:
        if report.rebuilt and current is not None:
            _copy_other_books(index, embedder, current, collection, book, report)
        _sync_book(run, walk.files, allow_empty, lambda: _progress(report, started, on_progress))
    except BaseException:
        if report.rebuilt:
            index.drop(collection)  # readers still see the previous collection
        report.collection = current or ""
        report.seconds = time.monotonic() - started
        raise
    if report.rebuilt:
        index.publish(collection)
    report.seconds = time.monotonic() - started
    return report


def _progress(
    report: IngestReport, started: float, on_progress: Callable[[IngestReport], None] | None
) -> None:
    report.seconds = time.monotonic() - started
    if on_progress:
        on_progress(report)


def _sync_book(
    run: _TreeRun, files: list[SourceFile], allow_empty: bool, progress: Callable[[], None]
) -> None:
    """Write the folder's changed pages, then delete the pages it no longer holds."""
    report = run.report
    seen: set[str] = set()
    for found in files:
        seen.add(found.source)
        report.files_seen += 1
        _ingest_file(run, found)
        progress()
    if report.files_changed + report.files_skipped == 0 and not allow_empty:
        # Every page failed: nothing was written, and nothing may be deleted.
        raise IngestRefused("empty_source", EMPTY_SOURCE, report)
    # Links that now leave the roots lose their points too: they are not `seen`.
    for source in sorted(set(run.indexed) - seen):
        run.index.delete_document(run.collection, run.book, source)
        report.files_deleted += 1


def _ingest_file(run: _TreeRun, found: SourceFile) -> None:
    """Re-embed one page if its hash changed; a page that cannot be read is a failure."""
    source, report = found.source, run.report
    try:
        raw = read_source(found.path, run.allowed)
        document_hash = hashlib.sha256(raw).hexdigest()
        if run.indexed.get(source) == document_hash:
            report.files_skipped += 1
            return
        chunks = _chunks(raw, run.book, source, run.base_url, document_hash)
        reuse = source in run.indexed
        vectors = _embed(
            run.index, run.embedder, run.collection, run.book, source, chunks, reuse, report
        )
        run.index.replace_document(run.collection, run.book, source, chunks, vectors)
        report.files_changed += 1
        report.chunks_written += len(chunks)
    except (DocumentError, OSError) as exc:
        log.warning("could not ingest %s: %s", source, exc)
        report.failures[source] = str(exc)


def reindex_document(
    index: TextbookIndex,
    embedder: Embedder,
    folder: Path,
    source: str,
    base_url: str = "/",
    *,
    book: str = DEFAULT_BOOK,
    roots: list[Path] | None = None,
) -> IngestReport:
    """Re-parse and re-embed one page of a book's `folder` into the current collection.

    No stored vector is reused.

    A page that is gone, or that became a link leaving `roots`, loses its points.
    """
    started = time.monotonic()
    report = IngestReport(files_total=1, files_seen=1)
    current = index.current_collection()
    if current is None:
        raise IngestRefused("no_index", "there is no index yet: ingest a folder first")
    if not index.matches_embedder(current):
        raise IngestRefused(
            "rebuild_required",
            "the index was built with another embedding model: rebuild it instead",
        )
    report.collection = current
    allowed = roots if roots is not None else [folder]
    try:
        path = locate_document(folder, source, allowed)
        if path is None:
            absent = "not in the folder or the index"
            _remove_document(index, current, book, source, absent, report)
        else:
            raw = read_source(path, allowed)
            chunks = _chunks(raw, book, source, base_url, hashlib.sha256(raw).hexdigest())
            texts = [chunk.embedding_text() for chunk in chunks]
            vectors = embedder.embed_documents(texts) if texts else []
            index.replace_document(current, book, source, chunks, vectors)
            report.embeddings_computed = len(vectors)
            report.files_changed, report.chunks_written = 1, len(chunks)
    except LinkRefused as exc:
        report.failures[source] = str(exc)
        _remove_document(index, current, book, source, None, report)  # it must not be served
    except (DocumentError, OSError) as exc:
        log.warning("could not re-index %s: %s", source, exc)
        report.failures[source] = str(exc)
    report.seconds = time.monotonic() - started
    return report


def remove_book(index: TextbookIndex, book: str) -> IngestReport:
    """Delete every point of one book from the current collection; other books stay."""
    started = time.monotonic()
    report = IngestReport()
    current = index.current_collection()
    if current is not None:
        report.collection = current
        report.files_total = report.files_seen = report.files_deleted = len(
            index.document_hashes(current, book)
        )
        index.delete_book(current, book)
    report.seconds = time.monotonic() - started
    return report


def _copy_other_books(
    index: TextbookIndex,
    embedder: Embedder,
    current: str,
    collection: str,
    book: str,
    report: IngestReport,
) -> None:
    """Copy every other book's points into a new collection, so a rebuild keeps them."""
    reuse = index.matches_embedder(current)
    for page in index.other_books_points(current, book):
        if reuse:
            vectors = [point.dense for point in page]
        else:  # another model: the stored text is all an embedding needs
            vectors = embedder.embed_documents([p.chunk().embedding_text() for p in page])
            report.embeddings_computed += len(vectors)
        index.write_copies(collection, page, vectors)


def _remove_document(
    index: TextbookIndex,
    collection: str,
    book: str,
    source: str,
    absent: str | None,
    report: IngestReport,
) -> None:
    if index.has_document(collection, book, source):
        index.delete_document(collection, book, source)
        report.files_deleted += 1
    elif absent is not None:
        report.failures[source] = absent
