"""Ingesting a textbook folder: parse, chunk, embed and index only what changed.

An incremental run compares each file's hash with the index and re-embeds only changed
chunks (unchanged chunks of a changed file keep their vectors). A full run, or a change of
embedding model, builds a new collection and swaps the alias once it is complete.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common.ingest.chunking import chunk_document
from common.ingest.documents import DocumentError, parse_markdown
from common.retrieval.embeddings import Embedder
from common.retrieval.store import IndexedChunk, TextbookIndex

log = logging.getLogger(__name__)
MARKDOWN_SUFFIXES = (".md", ".mdx")


@dataclass
class IngestReport:
    files_total: int = 0
    files_seen: int = 0
    files_changed: int = 0
    files_skipped: int = 0
    files_deleted: int = 0
    chunks_written: int = 0
    embeddings_computed: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    collection: str = ""
    rebuilt: bool = False

    @property
    def files_failed(self) -> int:
        """How many files could not be ingested."""
        return len(self.failures)


def find_markdown_files(root: Path) -> list[Path]:
    """Markdown and MDX pages, skipping Docusaurus partials (leading underscore) and hidden dirs."""
    files = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).parts
        if path.suffix.lower() not in MARKDOWN_SUFFIXES or not path.is_file():
            continue
        if any(part.startswith((".", "_")) or part == "node_modules" for part in relative):
            continue
        files.append(path)
    return files


def _chunks(raw: bytes, source: str, base_url: str, document_hash: str) -> list[IndexedChunk]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(source, f"not valid UTF-8: {exc}") from exc
    document = parse_markdown(text, source, base_url)
    return [
        IndexedChunk(
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
    source: str,
    chunks: list[IndexedChunk],
    reuse: bool,
    report: IngestReport,
) -> list[list[float]]:
    known = index.stored_vectors(collection, source) if reuse else {}
    todo = [c for c in chunks if c.content_hash not in known]
    fresh = embedder.embed_documents([c.embedding_text() for c in todo]) if todo else []
    report.embeddings_computed += len(fresh)
    known.update({c.content_hash: v for c, v in zip(todo, fresh, strict=True)})
    return [known[c.content_hash] for c in chunks]


def ingest_tree(
    index: TextbookIndex,
    embedder: Embedder,
    root: Path,
    base_url: str = "/",
    *,
    full: bool = False,
    on_progress: Callable[[IngestReport], None] | None = None,
) -> IngestReport:
    """Bring the index in line with the folder and return what was done."""
    started = time.monotonic()
    report = IngestReport()
    current = index.current_collection()
    report.rebuilt = full or current is None or not index.matches_embedder(current)
    collection = index.create_version() if report.rebuilt else str(current)
    report.collection = collection
    indexed = {} if report.rebuilt else index.document_hashes(collection)
    files = find_markdown_files(root)
    report.files_total = len(files)
    seen: set[str] = set()
    try:
        for path in files:
            source = path.relative_to(root).as_posix()
            seen.add(source)
            report.files_seen += 1
            try:
                raw = path.read_bytes()
                document_hash = hashlib.sha256(raw).hexdigest()
                if indexed.get(source) == document_hash:
                    report.files_skipped += 1
                else:
                    chunks = _chunks(raw, source, base_url, document_hash)
                    vectors = _embed(
                        index, embedder, collection, source, chunks, source in indexed, report
                    )
                    index.replace_document(collection, source, chunks, vectors)
                    report.files_changed += 1
                    report.chunks_written += len(chunks)
            except (DocumentError, OSError) as exc:
                log.warning("could not ingest %s: %s", source, exc)
                report.failures[source] = str(exc)
            report.seconds = time.monotonic() - started
            if on_progress:
                on_progress(report)
        for source in sorted(set(indexed) - seen):
            index.delete_document(collection, source)
            report.files_deleted += 1
    except BaseException:
        if report.rebuilt:
            index.drop(collection)  # readers still see the previous collection
        raise
    if report.rebuilt and report.files_failed == report.files_seen:
        index.drop(collection)  # nothing usable: keep serving the previous index
        report.collection = current or ""
    elif report.rebuilt:
        index.publish(collection)
    report.seconds = time.monotonic() - started
    return report
