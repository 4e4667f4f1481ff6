"""Ingest runs from outside the API: queue a job row, follow it, and `bookchat ingest`'s output."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from common.db import make_engine, make_session_factory, session_scope
from common.ingest_jobs import create_ingest_job, fail_ingest_job, get_ingest_job
from common.migrate import upgrade_database
from common.models import IngestJob, JobStatus
from common.queue import enqueue_ingest, make_celery
from common.settings import Settings

POLL_INTERVAL_S = 0.5


def queue_ingest_job(
    sessions: sessionmaker[Session],
    celery: Celery,
    path: str,
    *,
    full: bool = False,
    requested_by: uuid.UUID | None = None,
) -> IngestJob:
    """Record a queued ingest job, commit, then send it to the ingest queue."""
    with session_scope(sessions) as session:
        job = create_ingest_job(session, path, full, requested_by)
    try:
        enqueue_ingest(celery, job.path, full=job.full, run_id=str(job.id))
    except Exception:
        with session_scope(sessions) as session:
            fail_ingest_job(session, job.id, "the job could not be queued")
        raise
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


def run_ingest_via_queue(settings: Settings, path: str, *, full: bool, timeout: float) -> int:
    """`bookchat ingest`: queue the folder, show progress on stderr, print the outcome."""
    upgrade_database(settings)
    engine = make_engine(settings)
    sessions = make_session_factory(engine)
    try:
        folder = str(Path(path).resolve())
        job = queue_ingest_job(sessions, make_celery(settings), folder, full=full)
        with tqdm(desc="ingest", unit="file", file=sys.stderr) as bar:
            finished = wait_for_ingest_job(sessions, job.id, timeout, lambda row: _show(bar, row))
    finally:
        engine.dispose()
    if finished is None:
        print(
            f"ingest job {job.id} did not finish within {timeout:.0f}s (is a worker running?)",
            file=sys.stderr,
        )
        return 2
    _print_outcome(finished)
    ok = finished.status == JobStatus.COMPLETED.value and finished.files_failed == 0
    return 0 if ok else 1


def _show(bar: tqdm, job: IngestJob) -> None:
    bar.total = job.files_total or None
    bar.n = job.files_seen
    bar.set_postfix(
        changed=job.files_changed,
        skipped=job.files_skipped,
        failed=job.files_failed,
        chunks=job.chunks_written,
        refresh=False,
    )
    bar.refresh()


def summary_line(job: IngestJob) -> str:
    """One line with the job's counts and duration."""
    return (
        f"ingest {job.status}: {job.files_changed} changed, {job.files_skipped} skipped, "
        f"{job.files_deleted} deleted, {job.files_failed} failed files; "
        f"{job.chunks_written} chunks, {job.embeddings_computed} embeddings "
        f"in {job.seconds or 0:.1f}s"
    )


def _print_outcome(job: IngestJob) -> None:
    print(summary_line(job))
    if job.error_message:
        print(f"error: {job.error_message}")
    for failure in job.failures:
        print(f"  failed {failure['source']}: {failure['error']}")
