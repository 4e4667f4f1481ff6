"""A claim that only waited is given back: counted in `waits`, not in `attempts` or history."""

from __future__ import annotations

import uuid

from sqlalchemy import update
from sqlalchemy.orm import Session

from common.accounts.users import create_user
from common.jobs.chat_jobs import claim_chat_job, complete_chat_job
from common.jobs.lifecycle import job_attempts, release_attempt
from common.platform.models import AttemptOutcome, ChatJob, JobKind
from tests.common.jobs.test_chat_jobs import LEASE, reread, submit


def _due_now(session: Session, job_id: uuid.UUID) -> None:
    session.execute(update(ChatJob).where(ChatJob.id == job_id).values(due_at=None))


def test_waits_are_counted_apart_from_attempts(session: Session) -> None:
    user = create_user(session, f"w-{uuid.uuid4().hex[:12]}@example.com", "pw" * 6, None)
    job = submit(session, user)
    requeued = AttemptOutcome.REQUEUED
    for _ in range(3):  # three claims that met an open circuit
        claimed = claim_chat_job(session, job.id, LEASE, "w1")
        assert claimed is not None and claimed.attempts == 1
        assert release_attempt(session, JobKind.CHAT, job.id, 1, requeued, 5.0, "circuit", True)
        _due_now(session, job.id)
    claimed = claim_chat_job(session, job.id, LEASE, "w2")
    assert claimed is not None

    assert complete_chat_job(session, job.id, "answer", [], "m", None, attempt=1)
    row = reread(session, job.id)
    assert (row.status, row.attempts, row.waits) == ("completed", 1, 3)
    history = [(a.number, a.worker, a.outcome) for a in job_attempts(session, JobKind.CHAT, job.id)]
    assert history == [(1, "w2", "completed")]


def test_a_run_that_failed_before_waiting_is_still_an_attempt(session: Session) -> None:
    user = create_user(session, f"w-{uuid.uuid4().hex[:12]}@example.com", "pw" * 6, None)
    job = submit(session, user, "x")
    assert claim_chat_job(session, job.id, LEASE, "w1") is not None
    assert release_attempt(session, JobKind.CHAT, job.id, 1, AttemptOutcome.REQUEUED, 1.0, "503")
    _due_now(session, job.id)
    claimed = claim_chat_job(session, job.id, LEASE, "w2")

    assert claimed is not None and (claimed.attempts, claimed.waits) == (2, 0)
