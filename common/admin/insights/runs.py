"""Insights runs: a report computed as a job on the `reprocess` queue, with its progress.

A run is a `reprocess_jobs` row (operation "insights": status, attempts, lease, dead letters
as for any job) and an `insights_runs` row (window, stage, processed/total, the report). The
worker computes it (`computing.run_insights`); this module starts runs and reads them.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from celery import Celery
from sqlalchemy import select
from sqlalchemy.orm import Session

from common.admin.insights.stored import FRESH, iso
from common.admin.reprocess import send_after_commit
from common.platform.errors import NotFound
from common.platform.models import (
    FINISHED_STATUSES,
    InsightsRun,
    JobStatus,
    ReprocessJob,
    utcnow,
)

INSIGHTS = "insights"
ACTIVE = (JobStatus.QUEUED.value, JobStatus.IN_PROGRESS.value)
WAIT_FOR_OTHER_S = 5.0


def active_run(session: Session, since: datetime, until: datetime) -> InsightsRun | None:
    """The window's queued or running run (bounds within FRESH), newest first; None if none."""
    return session.scalar(
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


def start_run(
    session: Session,
    celery: Celery,
    since: datetime,
    until: datetime,
    requested_by: uuid.UUID | None,
) -> InsightsRun:
    """A run for the window: one already queued or running for it, else a new one, sent after
    the commit."""
    running = active_run(session, since, until)
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
    send_after_commit(session, celery, job.id)
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
