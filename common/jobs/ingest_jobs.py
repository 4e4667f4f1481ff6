"""Ingest jobs: one row per run of ingesting a textbook folder, written by the worker as it goes.

The lifecycle matches chat jobs: create the row, commit, enqueue, and mark it failed if the
broker cannot take it; the worker then starts, records progress and finishes the row. A job's
mode says what it does: `update` what changed in a folder, rebuild it in a `full` new
collection, re-embed one `document` of a book into the current collection, or `remove` a book.
Every job names its book (common/book/books.py), and a book's jobs run one at a time: a worker
that finds another job of the same book running leaves its job queued for a few seconds.
"""

from __future__ import annotations

import enum
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery import Celery
from sqlalchemy import ColumnElement, exists, func, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from common.book.books import book_for_folder
from common.book.ingest.sources import is_indexable, is_source_name
from common.jobs.lifecycle import claim_job, fenced_update, finish_attempt
from common.jobs.queue import enqueue_ingest
from common.platform.after_commit import enqueue_after_commit
from common.platform.db import session_scope
from common.platform.errors import InvalidInput, NotFound, ServiceUnavailable
from common.platform.models import IngestJob, JobKind, JobStatus, utcnow

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.5
# A job whose book is busy with another job is looked at again after this long.
BOOK_BUSY_RETRY_S = 2.0


class IngestMode(enum.StrEnum):
    UPDATE = "update"
    FULL = "full"
    DOCUMENT = "document"
    REMOVE = "remove"


FOLDER_MODES = (IngestMode.UPDATE.value, IngestMode.FULL.value)


@dataclass(frozen=True)
class IngestRun:
    """What a worker needs to run a claimed job: the attempt and the row's request."""

    attempt: int
    path: str
    mode: IngestMode
    document: str | None
    allow_empty: bool
    book: str = ""
    base_url: str | None = None


@dataclass
class IngestReport:
    """What an ingest run did so far: file and chunk counts, failures, time, collection."""

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


def _counts(report: IngestReport) -> dict[str, Any]:
    return {
        "files_total": report.files_total,
        "files_seen": report.files_seen,
        "files_changed": report.files_changed,
        "files_skipped": report.files_skipped,
        "files_deleted": report.files_deleted,
        "files_failed": report.files_failed,
        "chunks_written": report.chunks_written,
        "embeddings_computed": report.embeddings_computed,
        "failures": [
            {"source": source, "error": error} for source, error in sorted(report.failures.items())
        ],
        "seconds": round(report.seconds, 3),
    }


def create_ingest_job(
    session: Session,
    path: str,
    full: bool,
    requested_by: uuid.UUID | None,
    *,
    allow_empty: bool = False,
    document: str | None = None,
    book: str | None = None,
    base_url: str | None = None,
    remove: bool = False,
) -> IngestJob:
    """A queued run of ingesting `path` (or one `document` in it); None `requested_by`: the CLI.

    `book` defaults to the folder's own book (common/book/books.py); `remove` deletes the book.
    """
    if document is not None and not (is_source_name(document) and is_indexable(document)):
        raise InvalidInput(f"not a Markdown page of the textbook: {document!r}")
    if remove:
        mode = IngestMode.REMOVE
    elif document is not None:
        mode = IngestMode.DOCUMENT
    else:
        mode = IngestMode.FULL if full else IngestMode.UPDATE
    # Sent right after commit; the watchdog re-sends it if that send is lost.
    job = IngestJob(
        path=path,
        full=full,
        mode=mode.value,
        document=document,
        book=book_for_folder(session, path, book),
        base_url=base_url,
        allow_empty=allow_empty,
        requested_by=requested_by,
        failures=[],
        enqueued_at=utcnow(),
    )
    session.add(job)
    session.flush()
    return job


def queue_ingest_job(
    session: Session,
    celery: Celery,
    path: str,
    *,
    full: bool = False,
    requested_by: uuid.UUID | None = None,
    allow_empty: bool = False,
    document: str | None = None,
    book: str | None = None,
    base_url: str | None = None,
    remove: bool = False,
) -> IngestJob:
    """Record a queued ingest job; it is sent to the ingest queue once the caller commits.

    If the broker cannot take it, the row is marked failed and `common.platform.after_commit.commit`
    raises ServiceUnavailable.
    """
    job = create_ingest_job(
        session,
        path,
        full,
        requested_by,
        allow_empty=allow_empty,
        document=document,
        book=book,
        base_url=base_url,
        remove=remove,
    )
    bind, job_id, job_path, full_ingest = session.get_bind(), job.id, job.path, job.full

    def send() -> None:
        try:
            enqueue_ingest(celery, job_path, full=full_ingest, run_id=str(job_id))
        except Exception as exc:
            log.exception("could not enqueue ingest job %s", job_id)
            with Session(bind) as fresh:
                fail_queued_ingest_job(fresh, job_id, "the job could not be queued")
                fresh.commit()
            raise ServiceUnavailable("the job queue is unavailable; try again shortly") from exc

    enqueue_after_commit(session, send)
    return job


def wait_for_ingest_job(
    sessions: sessionmaker[Session],
    job_id: uuid.UUID,
    timeout: float,
    on_poll: Callable[[IngestJob], None] | None = None,
) -> IngestJob | None:
    """Poll the job's row until it is completed or failed; None if `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while True:
        with session_scope(sessions) as session:
            job = get_ingest_job(session, job_id)
        if on_poll:
            on_poll(job)
        if job.job_status.is_terminal:
            return job
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL_INTERVAL_S)


def get_ingest_job(session: Session, job_id: uuid.UUID) -> IngestJob:
    """The job with this id, or NotFound."""
    job = session.get(IngestJob, job_id)
    if job is None:
        raise NotFound(f"ingest job {job_id} not found")
    return job


def list_ingest_jobs(session: Session, limit: int) -> list[IngestJob]:
    """The most recent jobs, newest first."""
    rows = session.scalars(
        select(IngestJob).order_by(IngestJob.created_at.desc(), IngestJob.id.desc()).limit(limit)
    )
    return list(rows)


def start_ingest_job(
    session: Session, job_id: uuid.UUID, lease_seconds: float = 15.0, worker: str = "local"
) -> IngestRun | None:
    """Take a queued, due job as a new attempt and say what to run; None if not ours to run.

    While another job of the same book runs, the job stays queued, due a little later.
    """
    book = session.scalar(select(IngestJob.book).where(IngestJob.id == job_id))
    if book is not None and session.get_bind().dialect.name == "postgresql":
        # Two claims of one book's jobs queue here; SQLite takes one writer at a time anyway.
        session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"ingest:{book}"))))
    job = claim_job(session, JobKind.INGEST, job_id, worker, lease_seconds, _book_is_free())
    if job is None:
        _wait_for_book(session, job_id)
        return None
    if not isinstance(job, IngestJob):
        return None
    return IngestRun(
        attempt=job.attempts,
        path=job.path,
        mode=IngestMode(job.mode),
        document=job.document,
        allow_empty=job.allow_empty,
        book=job.book or "",
        base_url=job.base_url,
    )


def _book_is_free() -> ColumnElement[bool]:
    other = aliased(IngestJob)
    return ~exists().where(
        other.book == IngestJob.book,
        other.status == JobStatus.IN_PROGRESS.value,
        other.id != IngestJob.id,
    )


def _wait_for_book(session: Session, job_id: uuid.UUID) -> None:
    """A due queued job that could not be claimed waits in the database (its book is busy)."""
    now = utcnow()
    session.execute(
        update(IngestJob)
        .where(
            IngestJob.id == job_id,
            IngestJob.status == JobStatus.QUEUED.value,
            (IngestJob.due_at.is_(None)) | (IngestJob.due_at <= now),
        )
        .values(due_at=now + timedelta(seconds=BOOK_BUSY_RETRY_S), enqueued_at=None)
    )


def record_progress(
    session: Session, job_id: uuid.UUID, report: IngestReport, *, attempt: int
) -> bool:
    """Write a running attempt's counts so far; False if the job is no longer that attempt's."""
    result: Any = session.execute(
        fenced_update(IngestJob, job_id, attempt).values(**_counts(report))
    )
    return bool(result.rowcount)


def finish_ingest_job(
    session: Session,
    job_id: uuid.UUID,
    report: IngestReport,
    collection: str | None,
    *,
    attempt: int,
) -> bool:
    """Mark the attempt's job completed with its final counts and the collection it wrote."""
    return finish_attempt(
        session,
        JobKind.INGEST,
        job_id,
        attempt,
        JobStatus.COMPLETED,
        collection=collection,
        **_counts(report),
    )


def fail_ingest_job(
    session: Session,
    job_id: uuid.UUID,
    message: str,
    *,
    attempt: int,
    code: str = "ingest_failed",
    report: IngestReport | None = None,
) -> bool:
    """Mark the attempt's job failed as a whole (e.g. its folder is unavailable or empty).

    With a `report`, its counts and per-file failures are kept on the row too.
    """
    counts = _counts(report) if report is not None else {}
    return finish_attempt(
        session,
        JobKind.INGEST,
        job_id,
        attempt,
        JobStatus.FAILED,
        error_code=code,
        error_message=message,
        **counts,
    )


def fail_queued_ingest_job(session: Session, job_id: uuid.UUID, message: str) -> bool:
    """Mark a job that never reached a worker failed."""
    result: Any = session.execute(
        update(IngestJob)
        .where(IngestJob.id == job_id, IngestJob.status == JobStatus.QUEUED.value)
        .values(
            status=JobStatus.FAILED.value,
            error_code="queue_unavailable",
            error_message=message,
            completed_at=utcnow(),
            enqueued_at=None,
        )
    )
    return bool(result.rowcount)
