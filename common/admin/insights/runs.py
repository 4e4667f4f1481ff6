"""Insights runs: a report computed as a job on the `reprocess` queue, with its progress.

A run is a `reprocess_jobs` row (operation "insights": status, attempts, lease, dead letters
as for any job) and an `insights_runs` row (window, stage, processed/total, the report). It
embeds the questions that have no vector yet, places the vectors that have no group yet, then
builds the report: a run after a run costs what is new since.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery import Celery
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from common.admin.insights.gaps import Closest, Explain
from common.admin.insights.pages import Page
from common.admin.insights.report import FRESH, compute_report, iso
from common.admin.insights.vectors import embed_questions, missing_vectors, place_vectors
from common.book.retrieval.embeddings import Embedder
from common.jobs.lifecycle import fenced_update, finish_attempt, release_attempt
from common.jobs.queue import enqueue_reprocess
from common.platform.after_commit import enqueue_after_commit
from common.platform.errors import NotFound, ServiceUnavailable
from common.platform.models import (
    FINISHED_STATUSES,
    AttemptOutcome,
    InsightsRun,
    JobKind,
    JobStatus,
    ReprocessJob,
    utcnow,
)

log = logging.getLogger(__name__)
INSIGHTS = "insights"
ACTIVE = (JobStatus.QUEUED.value, JobStatus.IN_PROGRESS.value)
WAIT_FOR_OTHER_S = 5.0


def start_run(
    session: Session,
    celery: Celery,
    since: datetime,
    until: datetime,
    requested_by: uuid.UUID | None,
) -> InsightsRun:
    """A run for the window: one already queued or running for it, else a new one, sent after
    the commit."""
    running = session.scalar(
        select(InsightsRun)
        .join(ReprocessJob, ReprocessJob.id == InsightsRun.id)
        .where(
            ReprocessJob.status.in_(ACTIVE),
            InsightsRun.since.between(since - FRESH, since + FRESH),
            InsightsRun.until.between(until - FRESH, until + FRESH),
        )
        .order_by(ReprocessJob.created_at.desc())
        .limit(1)
    )
    if running is not None:
        return running
    window = {"since": iso(since), "until": iso(until)}
    job = ReprocessJob(
        operation=INSIGHTS,
        filters=window,
        requested_by=requested_by,
        request_hash=hashlib.sha256(json.dumps(window).encode()).hexdigest(),
        enqueued_at=utcnow(),
    )
    session.add(job)
    session.flush()
    run = InsightsRun(id=job.id, since=since, until=until, stage="queued")
    session.add(run)
    session.flush()
    bind, job_id = session.get_bind(), job.id

    def send() -> None:
        try:
            enqueue_reprocess(celery, job_id)
        except Exception as exc:
            log.exception("could not enqueue insights run %s", job_id)
            with Session(bind) as fresh:
                fresh.execute(
                    update(ReprocessJob)
                    .where(ReprocessJob.id == job_id)
                    .values(
                        status=JobStatus.FAILED.value,
                        error_code="queue_unavailable",
                        completed_at=utcnow(),
                        enqueued_at=None,
                    )
                )
                fresh.commit()
            raise ServiceUnavailable("the job queue is unavailable; try again shortly") from exc

    enqueue_after_commit(session, send)
    return run


def get_run(session: Session, run_id: uuid.UUID) -> tuple[InsightsRun, ReprocessJob]:
    """The insights run with this id and its job, or NotFound."""
    run = session.get(InsightsRun, run_id)
    job = session.get(ReprocessJob, run_id)
    if run is None or job is None:
        raise NotFound(f"insights run {run_id} not found")
    return run, job


def run_body(run: InsightsRun, job: ReprocessJob) -> dict[str, Any]:
    """The public view of a run: status and progress, and where its report is once done."""
    done = job.status == JobStatus.COMPLETED.value
    return {
        "id": str(run.id),
        "object": "insights.run",
        "status": job.status,
        "since": iso(run.since),
        "until": iso(run.until),
        "stage": run.stage,
        "progress": {"processed": run.processed, "total": run.total},
        "finished": job.status in {s.value for s in FINISHED_STATUSES},
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
        "attempts": job.attempts,
        "created_at": iso(job.created_at),
        "completed_at": iso(job.completed_at) if job.completed_at else None,
        "report": run.report if done else None,
    }


@dataclass(frozen=True)
class RunTools:
    """What a worker lends a run: the embedder, the index's pages, search and a model."""

    embedder: Embedder
    catalogue: Callable[[], list[Page]]
    closest: Closest | None = None
    explain: Explain | None = None
    # Called once the report is built, before the run finishes (to store what it learned).
    after_report: Callable[[], None] | None = None


def run_insights(
    session: Session,
    job: ReprocessJob,
    attempt: int,
    tools: RunTools,
    still_ours: Callable[[], bool],
    checkpoint: Callable[[], None],
) -> None:
    """Embed what is new, group it, build the report and finish the job (commits at checkpoints)."""
    run = session.get(InsightsRun, job.id)
    assert run is not None
    if _another_running(session, job):
        # Two runs placing the same new vectors would start duplicate groups: wait for it.
        release_attempt(
            session, JobKind.REPROCESS, job.id, attempt, AttemptOutcome.REQUEUED,
            due_in=WAIT_FOR_OTHER_S, reason="another insights run is computing", wait=True,
        )  # fmt: skip
        return
    previous = run.since - (run.until - run.since)
    embedder = tools.embedder

    def progress(stage: str) -> Callable[[int, int], None]:
        def report(done: int, total: int) -> None:
            if not still_ours():
                raise _Lost
            _progress(session, job.id, attempt, stage, done, total)
            checkpoint()

        return report

    try:
        missing = missing_vectors(session, embedder.name, previous, run.until)
        progress("embedding")(0, len(missing))
        embed_questions(session, embedder, missing, progress("embedding"))
        groups = place_vectors(session, embedder.name, embedder.dimension, progress("grouping"))
        progress("report")(0, 1)
        report = compute_report(
            session,
            run.since,
            run.until,
            catalogue=tools.catalogue(),
            groups=groups,
            closest=tools.closest,
            explain=tools.explain,
        )
    except _Lost:
        session.rollback()
        return
    if tools.after_report is not None:
        tools.after_report()
    body = {**report.to_dict(), "run_id": str(job.id)}
    if finish_attempt(session, JobKind.REPROCESS, job.id, attempt, JobStatus.COMPLETED):
        session.execute(
            update(InsightsRun)
            .where(InsightsRun.id == job.id)
            .values(stage="done", processed=1, total=1, report=body, computed_at=report.computed_at)
        )


def _another_running(session: Session, job: ReprocessJob) -> bool:
    """Whether an insights run that started before this one still holds its lease."""
    mine = (job.started_at, str(job.id))
    others = session.execute(
        select(ReprocessJob.id, ReprocessJob.started_at).where(
            ReprocessJob.operation == INSIGHTS,
            ReprocessJob.status == JobStatus.IN_PROGRESS.value,
            ReprocessJob.id != job.id,
            ReprocessJob.lease_expires_at > utcnow(),
        )
    ).all()
    return any((started, str(other)) < mine for other, started in others if started)


class _Lost(Exception):
    """The run's lease went to another worker: stop without writing."""


def _progress(
    session: Session, job_id: uuid.UUID, attempt: int, stage: str, done: int, total: int
) -> None:
    # Written only while this attempt still holds the job.
    owned: Any = session.execute(
        fenced_update(ReprocessJob, job_id, attempt).values(worker=ReprocessJob.worker)
    )
    if owned.rowcount:
        session.execute(
            update(InsightsRun)
            .where(InsightsRun.id == job_id)
            .values(stage=stage, processed=done, total=total)
        )
