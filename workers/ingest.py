"""Ingesting a textbook folder: parse, chunk and index only what changed."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common.ingest.chunking import chunk_document
from common.ingest.documents import DocumentError, parse_markdown
from common.retrieval.store import IndexedChunk, TextbookIndex

log = logging.getLogger(__name__)
MARKDOWN_SUFFIXES = (".md", ".mdx")


@dataclass
class IngestReport:
    files_seen: int = 0
    files_changed: int = 0
    files_skipped: int = 0
    files_deleted: int = 0
    chunks_written: int = 0
    failures: dict[str, str] = field(default_factory=dict)

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


def _index_chunks(raw: bytes, source: str, base_url: str, document_hash: str) -> list[IndexedChunk]:
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


def ingest_tree(
    index: TextbookIndex,
    root: Path,
    base_url: str = "/",
    on_file: Callable[[str, IngestReport], None] | None = None,
) -> IngestReport:
    """Bring the index in line with the folder: changed files replaced, deleted ones removed."""
    report = IngestReport()
    indexed = index.document_hashes()
    seen: set[str] = set()
    for path in find_markdown_files(root):
        source = path.relative_to(root).as_posix()
        seen.add(source)
        report.files_seen += 1
        try:
            raw = path.read_bytes()
            document_hash = hashlib.sha256(raw).hexdigest()
            if indexed.get(source) == document_hash:
                report.files_skipped += 1
            else:
                chunks = _index_chunks(raw, source, base_url, document_hash)
                index.replace_document(source, chunks)
                report.files_changed += 1
                report.chunks_written += len(chunks)
        except (DocumentError, OSError) as exc:
            log.warning("could not ingest %s: %s", source, exc)
            report.failures[source] = str(exc)
        if on_file:
            on_file(source, report)
    for source in sorted(set(indexed) - seen):
        index.delete_document(source)
        report.files_deleted += 1
    return report
