"""`bookchat ingest`: queue an ingest job, show its progress, print the outcome."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from cli.terminal import printable
from common.jobs.ingest_jobs import queue_ingest_job, wait_for_ingest_job
from common.jobs.queue import make_celery
from common.platform.db import make_engine, make_session_factory, session_scope
from common.platform.migrate import upgrade_database
from common.platform.models import IngestJob, JobStatus
from common.platform.settings import Settings


def run_ingest_via_queue(
    settings: Settings,
    path: str,
    *,
    full: bool,
    timeout: float,
    book: str | None = None,
    base_url: str | None = None,
) -> int:
    """`bookchat ingest`: queue the folder as its book, show progress, print the outcome."""
    upgrade_database(settings)
    engine = make_engine(settings)
    sessions = make_session_factory(engine)
    try:
        folder = str(Path(path).resolve())
        with session_scope(sessions) as session:
            job = queue_ingest_job(
                session, make_celery(settings), folder, full=full, book=book, base_url=base_url
            )
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
    print(printable(f"book: {job.book} ({job.path})"))
    if job.error_message:
        print(printable(f"error: {job.error_message}"))
    for failure in job.failures:
        print(printable(f"  failed {failure['source']}: {failure['error']}"))
