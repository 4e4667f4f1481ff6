"""Running an ingest job: claim it, run a book's tree, a page or its removal, record the outcome."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from redis import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from common.book.books import book_for_folder, last_folder_book
from common.book.ingest.sources import (
    PathUnavailable,
    resolve_folder,
)
from common.jobs.ingest_jobs import (
    IngestMode,
    IngestReport,
    IngestRun,
    fail_ingest_job,
    finish_ingest_job,
    record_progress,
    start_ingest_job,
)
from common.jobs.lifecycle import release_attempt
from common.platform.db import is_unavailable, run_unit, session_scope
from common.platform.models import AttemptOutcome, JobKind
from workers.answer_cache import bump_index_version
from workers.indexing import IngestRefused, ingest_tree, reindex_document, remove_book
from workers.resources import WorkerResources

log = logging.getLogger(__name__)
T = TypeVar("T")
# An ingest job's row is updated at most this often while files are processed.
PROGRESS_INTERVAL_S = 0.5


def run_ingest_job(
    res: WorkerResources, job_id: uuid.UUID, path: str | None = None, full: bool | None = None
) -> None:
    """Run one ingest job and record its outcome on its row; safe to call again.

    `path` and `full` are the message's copies of the row's; the row is what runs.
    """
    policy = res.retry_policy
    run = _record(res, lambda s: start_ingest_job(s, job_id, policy.job_lease_s, res.worker_name))
    if run is None:
        log.info("ingest job %s is not runnable (finished, running or not due)", job_id)
        return
    res.leases.hold(JobKind.INGEST, job_id, run.attempt)
    try:
        _run_attempt(res, job_id, run)
    finally:
        res.leases.release(JobKind.INGEST, job_id)


def _record(res: WorkerResources, write: Callable[[Session], T]) -> T:
    return run_unit(res.sessions, write, res.retry_policy.outage_bound_s)


def _label_unlabelled(res: WorkerResources) -> None:
    """Give the points of an index made before books existed to the book they came from.

    Such an index holds one folder's pages: the last completed folder run's (or, with none on
    record, TEXTBOOK_PATH's). Once labelled, this finds nothing to do.
    """
    current = res.index.current_collection()
    if current is None or not res.index.unlabelled(current):
        return

    def legacy_book(session: Session) -> str:
        default = str(res.settings.textbook_path)
        return last_folder_book(session) or book_for_folder(session, default)

    book = _record(res, legacy_book)
    res.index.label_unlabelled(current, book)
    log.info("gave the points of an index made before books to the book %r", book)


def _ingest(res: WorkerResources, job_id: uuid.UUID, run: IngestRun) -> IngestReport:
    _label_unlabelled(res)
    book = run.book or _record(res, lambda s: book_for_folder(s, run.path))
    if run.mode is IngestMode.REMOVE:
        return remove_book(res.index, book)
    roots = list(res.settings.ingest_roots)
    folder = resolve_folder(run.path, roots)
    base_url = run.base_url or res.settings.textbook_base_url
    if run.mode is IngestMode.DOCUMENT:
        assert run.document is not None  # create_ingest_job sets both
        return reindex_document(
            res.index, res.embedder, folder, run.document, base_url, book=book, roots=roots
        )
    return ingest_tree(
        res.index,
        res.embedder,
        folder,
        base_url,
        book=book,
        full=run.mode is IngestMode.FULL,
        allow_empty=run.allow_empty,
        roots=roots,
        on_progress=_progress_recorder(res, job_id, run.attempt),
    )


def _run_attempt(res: WorkerResources, job_id: uuid.UUID, run: IngestRun) -> None:
    attempt = run.attempt
    try:
        report = _changing_index(res, lambda: _ingest(res, job_id, run))
    except PathUnavailable as exc:
        # The caller sees one answer for every reason; the log says which it was.
        log.warning("ingest job %s: refused %r: %s", job_id, exc.path, exc.reason)
        _fail(res, job_id, attempt, str(exc), "path_unavailable")
        return
    except IngestRefused as exc:
        log.warning("ingest job %s (%s): %s", job_id, run.path, exc.message)
        _fail(res, job_id, attempt, exc.message, exc.code, exc.report)
        return
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
    # A document run writes into the current collection; the row names only folder runs'
    # collections, which /readyz and GET /v1/admin/index read.
    collection = None if run.mode is IngestMode.DOCUMENT else report.collection or None
    _record(res, lambda s: finish_ingest_job(s, job_id, report, collection, attempt=attempt))
    log.info("ingested %s %s (job %s): %s", run.path, run.document or "", job_id, report)


def _changing_index(res: WorkerResources, ingest: Callable[[], T]) -> T:
    """Run an ingest between two bumps of the index version (see workers/answer_cache.py).

    Cached answers of the old version stop matching when it starts, and answers stored while
    it ran (under its first bump) when it ends, however it ends.
    """
    _bump(res)
    try:
        return ingest()
    finally:
        _bump(res)


def _bump(res: WorkerResources) -> None:
    try:
        bump_index_version(res.redis)
    except RedisError:
        # Answers cached before stay served until their TTL: say so, but index the book.
        log.warning("could not bump the index version; cached answers may be stale")


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


def _fail(
    res: WorkerResources,
    job_id: uuid.UUID,
    attempt: int,
    message: str,
    code: str = "ingest_failed",
    report: IngestReport | None = None,
) -> None:
    _record(
        res,
        lambda s: fail_ingest_job(s, job_id, message, attempt=attempt, code=code, report=report),
    )
