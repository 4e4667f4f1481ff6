"""Ingest jobs: one row per run of ingesting a textbook folder, written by the worker as it goes."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from common.errors import NotFound
from common.models import IngestJob, JobStatus, utcnow

_ACTIVE = (JobStatus.QUEUED.value, JobStatus.IN_PROGRESS.value)
# Far above the ingest task's hard time limit: a run this old lost its worker.
STALE_AFTER = timedelta(hours=2)


class IngestCounts(Protocol):
    """What a run reports (the worker's IngestReport; common does not import workers)."""

    @property
    def files_total(self) -> int: ...
    @property
    def files_seen(self) -> int: ...
    @property
    def files_changed(self) -> int: ...
    @property
    def files_skipped(self) -> int: ...
    @property
    def files_deleted(self) -> int: ...
    @property
    def files_failed(self) -> int: ...
    @property
    def chunks_written(self) -> int: ...
    @property
    def embeddings_computed(self) -> int: ...
    @property
    def failures(self) -> Mapping[str, str]: ...
    @property
    def seconds(self) -> float: ...


def _counts(report: IngestCounts) -> dict[str, Any]:
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
    session: Session, path: str, full: bool, requested_by: uuid.UUID | None
) -> IngestJob:
    """A queued run of ingesting `path`; `requested_by` is None for the CLI."""
    job = IngestJob(path=path, full=full, requested_by=requested_by, failures=[])
    session.add(job)
    session.flush()
    return job


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


def start_ingest_job(session: Session, job_id: uuid.UUID) -> bool:
    """Atomically take a queued job (or a stale running one); False if it is not ours to run."""
    now = utcnow()
    result: Any = session.execute(
        update(IngestJob)
        .where(
            IngestJob.id == job_id,
            or_(
                IngestJob.status == JobStatus.QUEUED.value,
                (IngestJob.status == JobStatus.IN_PROGRESS.value)
                & (IngestJob.started_at < now - STALE_AFTER),
            ),
        )
        .values(status=JobStatus.IN_PROGRESS.value, started_at=now)
    )
    return bool(result.rowcount)


def record_progress(session: Session, job_id: uuid.UUID, report: IngestCounts) -> bool:
    """Write a running job's counts so far; False if it is no longer running."""
    result: Any = session.execute(
        update(IngestJob)
        .where(IngestJob.id == job_id, IngestJob.status == JobStatus.IN_PROGRESS.value)
        .values(**_counts(report))
    )
    return bool(result.rowcount)


def finish_ingest_job(
    session: Session, job_id: uuid.UUID, report: IngestCounts, collection: str | None
) -> bool:
    """Mark a running job completed with its final counts and the collection it wrote."""
    result: Any = session.execute(
        update(IngestJob)
        .where(IngestJob.id == job_id, IngestJob.status == JobStatus.IN_PROGRESS.value)
        .values(
            status=JobStatus.COMPLETED.value,
            collection=collection,
            completed_at=utcnow(),
            **_counts(report),
        )
    )
    return bool(result.rowcount)


def fail_ingest_job(session: Session, job_id: uuid.UUID, message: str) -> bool:
    """Mark a queued or running job failed as a whole (e.g. its folder does not exist)."""
    result: Any = session.execute(
        update(IngestJob)
        .where(IngestJob.id == job_id, IngestJob.status.in_(_ACTIVE))
        .values(status=JobStatus.FAILED.value, error_message=message, completed_at=utcnow())
    )
    return bool(result.rowcount)
