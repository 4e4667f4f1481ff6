"""The watchdog's decisions: take back jobs whose worker was lost, and find jobs to (re)send.

Plain functions over a session; `workers.watchdog` runs them on a timer and does the sending.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from common.jobs.lifecycle import finish_attempt, lost_attempts, model_of, release_attempt
from common.platform.models import AttemptOutcome, JobKind, JobStatus

WORKER_LOST = "worker_lost"
BATCH = 200


@dataclass(frozen=True)
class TakenBack:
    kind: JobKind
    job_id: uuid.UUID
    attempt: int
    dead: bool  # True: its lost attempts ran out and it is now failed (a dead letter)


def take_back_lost_jobs(
    session: Session, kind: JobKind, now: datetime, max_lost_attempts: int
) -> list[TakenBack]:
    """Jobs running on a lease that expired go back to the queue, or fail after too many losses."""
    model = model_of(kind)
    expired = session.execute(
        select(model.id, model.attempts, model.worker)
        .where(model.status == JobStatus.IN_PROGRESS.value, model.lease_expires_at < now)
        .limit(BATCH)
    ).all()
    taken: list[TakenBack] = []
    for job_id, attempt, worker in expired:
        reason = f"worker {worker or '?'} stopped renewing its lease"
        if lost_attempts(session, kind, job_id) + 1 >= max_lost_attempts:
            if _dead_letter(session, kind, job_id, attempt, reason, now):
                taken.append(TakenBack(kind, job_id, attempt, dead=True))
        elif release_attempt(session, kind, job_id, attempt, AttemptOutcome.LOST, reason=reason):
            taken.append(TakenBack(kind, job_id, attempt, dead=False))
    return taken


def _dead_letter(
    session: Session, kind: JobKind, job_id: uuid.UUID, attempt: int, reason: str, now: datetime
) -> bool:
    return finish_attempt(
        session,
        kind,
        job_id,
        attempt,
        JobStatus.FAILED,
        None,
        AttemptOutcome.LOST,
        reason,
        error_code=WORKER_LOST,
        error_message=f"the job's worker was lost {attempt} times; last: {reason}",
        completed_at=now,
    )


def due_jobs(session: Session, kind: JobKind, now: datetime) -> list[uuid.UUID]:
    """Queued jobs that are due and not in the broker: the watchdog sends them."""
    model = model_of(kind)
    rows = session.scalars(
        select(model.id)
        .where(
            model.status == JobStatus.QUEUED.value,
            model.enqueued_at.is_(None),
            (model.due_at.is_(None)) | (model.due_at <= now),
        )
        .order_by(model.created_at)
        .limit(BATCH)
    )
    return list(rows)


def long_enqueued_jobs(
    session: Session, kind: JobKind, now: datetime, grace_seconds: float
) -> list[uuid.UUID]:
    """Queued jobs sent to the broker more than `grace_seconds` ago and still not started."""
    model = model_of(kind)
    rows = session.scalars(
        select(model.id).where(
            model.status == JobStatus.QUEUED.value,
            model.enqueued_at < now - timedelta(seconds=grace_seconds),
        )
    )
    return list(rows)


def forget_enqueued(session: Session, kind: JobKind, job_ids: list[uuid.UUID]) -> None:
    """Mark jobs as not in the broker (their message was lost), so the next pass sends them."""
    if not job_ids:
        return
    model = model_of(kind)
    session.execute(
        update(model)
        .where(model.id.in_(job_ids), model.status == JobStatus.QUEUED.value)
        .values(enqueued_at=None)
    )
