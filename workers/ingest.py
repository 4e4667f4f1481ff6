"""Ingesting a textbook folder: parse, chunk, embed and index only what changed.

An incremental run compares each file's hash with the index and re-embeds only changed
chunks (unchanged chunks of a changed file keep their vectors). A full run, or a change of
embedding model, builds a new collection and swaps the alias once it is complete.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from common.db import is_unavailable, run_unit, session_scope
from common.ingest.chunking import chunk_document
from common.ingest.documents import DocumentError, parse_markdown
from common.ingest_jobs import (
    IngestReport,
    fail_ingest_job,
    finish_ingest_job,
    record_progress,
    start_ingest_job,
)
from common.lifecycle import release_attempt
from common.models import AttemptOutcome, JobKind
from common.retrieval.embeddings import Embedder
from common.retrieval.store import IndexedChunk, TextbookIndex
from workers.resources import WorkerResources

log = logging.getLogger(__name__)
T = TypeVar("T")
MARKDOWN_SUFFIXES = (".md", ".mdx")
# An ingest job's row is updated at most this often while files are processed.
PROGRESS_INTERVAL_S = 0.5


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


def run_ingest_job(res: WorkerResources, job_id: uuid.UUID, path: str, full: bool) -> None:
    """Run one ingest job and record its outcome on its row; safe to call again."""
    policy = res.retry_policy
    attempt = _record(
        res, lambda s: start_ingest_job(s, job_id, policy.job_lease_s, res.worker_name)
    )
    if attempt is None:
        log.info("ingest job %s is not runnable (finished, running or not due)", job_id)
        return
    res.leases.hold(JobKind.INGEST, job_id, attempt)
    try:
        _run_attempt(res, job_id, attempt, Path(path), full)
    finally:
        res.leases.release(JobKind.INGEST, job_id)


def _record(res: WorkerResources, write: Callable[[Session], T]) -> T:
    return run_unit(res.sessions, write, res.retry_policy.outage_bound_s)


def _run_attempt(
    res: WorkerResources, job_id: uuid.UUID, attempt: int, root: Path, full: bool
) -> None:
    if not root.is_dir():
        reason = "not a folder" if root.exists() else "folder not found"
        _fail(res, job_id, attempt, f"{reason}: {root}")
        return
    try:
        report = ingest_tree(
            res.index,
            res.embedder,
            root,
            res.settings.textbook_base_url,
            full=full,
            on_progress=_progress_recorder(res, job_id, attempt),
        )
    except _HandBack:
        _record(
            res,
            lambda s: release_attempt(
                s,
                JobKind.INGEST,
                job_id,
                attempt,
                AttemptOutcome.HANDED_BACK,
                0.0,
                "worker stopped",
            ),
        )
        return
    except _AttemptLost:
        log.warning("ingest job %s was taken from attempt %d; stopping", job_id, attempt)
        return
    except SoftTimeLimitExceeded:
        _fail(res, job_id, attempt, "the ingest took longer than its time limit")
        return
    except Exception as exc:
        if not is_unavailable(exc):
            _fail(res, job_id, attempt, f"ingest failed: {type(exc).__name__}: {exc}")
        raise
    _record(
        res,
        lambda s: finish_ingest_job(s, job_id, report, report.collection or None, attempt=attempt),
    )
    log.info("ingested %s (job %s): %s", root, job_id, report)


class _HandBack(Exception):
    """The worker is shutting down: give the job back now (it is idempotent to redo)."""


class _AttemptLost(Exception):
    """The job was taken from this attempt."""


def _progress_recorder(
    res: WorkerResources, job_id: uuid.UUID, attempt: int
) -> Callable[[IngestReport], None]:
    last_write = 0.0

    def on_progress(report: IngestReport) -> None:
        if res.leases.lost(JobKind.INGEST, job_id):
            raise _AttemptLost()
        if res.shutting_down.is_set():
            raise _HandBack()
        # Throttled: a row update per file would make SQLite the bottleneck on big books.
        nonlocal last_write
        if time.monotonic() - last_write < PROGRESS_INTERVAL_S:
            return
        last_write = time.monotonic()
        try:
            with session_scope(res.sessions) as session:
                record_progress(session, job_id, report, attempt=attempt)
        except SQLAlchemyError:
            log.warning("could not record progress of ingest job %s", job_id, exc_info=True)

    return on_progress


def _fail(res: WorkerResources, job_id: uuid.UUID, attempt: int, message: str) -> None:
    _record(res, lambda s: fail_ingest_job(s, job_id, message, attempt=attempt))
