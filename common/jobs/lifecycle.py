"""The lifecycle both kinds of job share: claim, renew, finish, release, and the attempt history.

A job's row is its truth. `queued` rows wait for a worker, either in the broker (`enqueued_at`
set) or in the database until `due_at` (the watchdog sends them). A worker claims a row with one
conditional UPDATE that also counts the attempt; every later write names that attempt (it goes
through `fenced_update`), so a worker whose job was taken from it (its lease expired) can no
longer change the row. A claim that must wait is given back (`release_attempt(wait=True)`):
its worker writes nothing after that, so the next claim may reuse the number.
"""

from __future__ import annotations

import traceback
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Update, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from common.platform.models import (
    AttemptOutcome,
    ChatJob,
    IngestJob,
    JobAttempt,
    JobKind,
    JobStatus,
    ReprocessJob,
    utcnow,
)

Job = ChatJob | IngestJob | ReprocessJob
JobModel = type[ChatJob] | type[IngestJob] | type[ReprocessJob]
MODELS: dict[JobKind, JobModel] = {
    JobKind.CHAT: ChatJob,
    JobKind.INGEST: IngestJob,
    JobKind.REPROCESS: ReprocessJob,
}


def model_of(kind: JobKind) -> JobModel:
    """The table of this kind of job."""
    return MODELS[kind]


def fenced_update(model: JobModel, job_id: uuid.UUID, attempt: int) -> Update:
    """An UPDATE of the job that matches only while `attempt` is its running attempt."""
    return update(model).where(
        model.id == job_id,
        model.status == JobStatus.IN_PROGRESS.value,
        model.attempts == attempt,
    )


def claim_job(
    session: Session,
    kind: JobKind,
    job_id: uuid.UUID,
    worker: str,
    lease_seconds: float,
    only_if: ColumnElement[bool] | None = None,
) -> Job | None:
    """Take a queued, due job as a new attempt; None if not ours to run (or `only_if` is false)."""
    model, now = model_of(kind), utcnow()
    conditions = [
        model.id == job_id,
        model.status == JobStatus.QUEUED.value,
        (model.due_at.is_(None)) | (model.due_at <= now),
    ]
    if only_if is not None:
        conditions.append(only_if)
    # One round trip: the claimed row comes back with the UPDATE (RETURNING), not a SELECT.
    claimed = session.scalars(
        update(model)
        .where(*conditions)
        .values(
            status=JobStatus.IN_PROGRESS.value,
            attempts=model.attempts + 1,
            worker=worker,
            started_at=now,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            due_at=None,
            enqueued_at=None,
        )
        .returning(model)
        .execution_options(populate_existing=True)
    )
    job = claimed.one_or_none()
    if job is None:
        return None
    assert isinstance(job, ChatJob | IngestJob | ReprocessJob)
    session.add(JobAttempt(job_kind=kind.value, job_id=job_id, number=job.attempts, worker=worker))
    return job


def renew_leases(
    session: Session, kind: JobKind, attempts: dict[uuid.UUID, int], lease_seconds: float
) -> set[uuid.UUID]:
    """Extend the leases of running attempts in one UPDATE; the jobs still those attempts'.

    One statement for all of them: on SQLite the write lock is held from the first write to
    the commit, and a statement per job held it across as many trips through the interpreter.
    """
    if not attempts:
        return set()
    model = model_of(kind)
    renewed = session.scalars(
        update(model)
        .where(
            model.status == JobStatus.IN_PROGRESS.value,
            or_(*(and_(model.id == job_id, model.attempts == n) for job_id, n in attempts.items())),
        )
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
        .returning(model.id)
    )
    return set(renewed)


def end_attempt(
    session: Session,
    kind: JobKind,
    job_id: uuid.UUID,
    attempt: int,
    outcome: AttemptOutcome,
    error_code: str | None = None,
    error_message: str | None = None,
    trace: str | None = None,
) -> None:
    """Record how an attempt ended (once: a later call for the same attempt changes nothing)."""
    session.execute(
        update(JobAttempt)
        .where(
            JobAttempt.job_kind == kind.value,
            JobAttempt.job_id == job_id,
            JobAttempt.number == attempt,
            JobAttempt.ended_at.is_(None),
        )
        .values(
            ended_at=utcnow(),
            outcome=outcome.value,
            error_code=error_code,
            error_message=error_message,
            traceback=trace,
        )
    )


def finish_attempt(
    session: Session,
    kind: JobKind,
    job_id: uuid.UUID,
    attempt: int,
    status: JobStatus,
    trace: str | None = None,
    outcome: AttemptOutcome | None = None,
    reason: str | None = None,
    /,  # so that no column in `values` can land on a parameter
    **values: Any,
) -> bool:
    """End a running attempt with a final status; False if the job is no longer this attempt's.

    `values` are the job's columns to set (`completed_at` too, if given). The attempt's outcome
    is the status unless `outcome` says otherwise (a job failed because its worker was lost ends
    a `lost` attempt), and its message is `reason`, or else the job's `error_message`.
    """
    columns = {"status": status.value, "completed_at": utcnow(), "lease_expires_at": None}
    result: Any = session.execute(
        fenced_update(model_of(kind), job_id, attempt).values({**columns, **values})
    )
    if not result.rowcount:
        return False
    end_attempt(
        session,
        kind,
        job_id,
        attempt,
        outcome or AttemptOutcome(status.value),
        values.get("error_code"),
        reason if reason is not None else values.get("error_message"),
        trace,
    )
    return True


def release_attempt(
    session: Session,
    kind: JobKind,
    job_id: uuid.UUID,
    attempt: int,
    outcome: AttemptOutcome,
    due_in: float = 0.0,
    reason: str | None = None,
    wait: bool = False,
    **values: Any,
) -> bool:
    """Put a running attempt's job back in the queue, due in `due_in` seconds.

    It waits in the database, not the broker: the watchdog sends it when it is due. With
    `wait` the job could not start its work (model capacity, an open circuit, no index yet):
    the claim is given back, counted in `waits` instead of `attempts` and kept out of the
    attempt history; the next claim runs as the same attempt number.
    """
    model = model_of(kind)
    counts = {"attempts": model.attempts - 1, "waits": model.waits + 1} if wait else {}
    result: Any = session.execute(
        fenced_update(model, job_id, attempt).values(
            status=JobStatus.QUEUED.value,
            worker=None,
            lease_expires_at=None,
            due_at=utcnow() + timedelta(seconds=max(0.0, due_in)),
            enqueued_at=None,
            **counts,
            **values,
        )
    )
    if not result.rowcount:
        return False
    if wait:
        _forget_attempt(session, kind, job_id, attempt)
    else:
        end_attempt(session, kind, job_id, attempt, outcome, error_message=reason)
    return True


def _forget_attempt(session: Session, kind: JobKind, job_id: uuid.UUID, attempt: int) -> None:
    session.execute(
        delete(JobAttempt).where(
            JobAttempt.job_kind == kind.value,
            JobAttempt.job_id == job_id,
            JobAttempt.number == attempt,
            JobAttempt.ended_at.is_(None),
        )
    )


def lost_attempts(session: Session, kind: JobKind, job_id: uuid.UUID) -> int:
    """How many of the job's attempts ended because their worker was lost."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(JobAttempt)
            .where(
                JobAttempt.job_kind == kind.value,
                JobAttempt.job_id == job_id,
                JobAttempt.outcome == AttemptOutcome.LOST.value,
            )
        )
        or 0
    )


def job_attempts(session: Session, kind: JobKind, job_id: uuid.UUID) -> list[JobAttempt]:
    """The job's attempts, first to last."""
    return list(
        session.scalars(
            select(JobAttempt)
            .where(JobAttempt.job_kind == kind.value, JobAttempt.job_id == job_id)
            .order_by(JobAttempt.number)
        )
    )


def mark_enqueued(session: Session, kind: JobKind, job_id: uuid.UUID, at: datetime) -> None:
    """Note that the job's id was handed to the broker."""
    model = model_of(kind)
    session.execute(
        update(model)
        .where(model.id == job_id, model.status == JobStatus.QUEUED.value)
        .values(enqueued_at=at)
    )


def trace_summary(exc: BaseException, frames: int = 6, limit: int = 2000) -> str:
    """The last frames of an exception's traceback, short enough to keep on an attempt."""
    lines = traceback.format_exception(exc)
    return "".join(lines[-frames:])[-limit:]
