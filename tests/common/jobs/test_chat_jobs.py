"""Chat jobs against each real database: submission, idempotency, claims, outcomes, history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from common.accounts.users import create_user
from common.jobs.chat_jobs import (
    cancel_chat_job,
    claim_chat_job,
    complete_chat_job,
    fail_chat_job,
    job_context,
    submit_chat_job,
)
from common.jobs.lifecycle import job_attempts, trace_summary
from common.jobs.schemas import ChatJobCreate
from common.jobs.watchdog import take_back_lost_jobs
from common.platform.errors import IdempotencyKeyReused, JobNotCancellable, NotFound
from common.platform.models import (
    AttemptOutcome,
    ChatJob,
    Conversation,
    JobAttempt,
    JobKind,
    JobStatus,
    User,
    utcnow,
)

LEASE = 60


@pytest.fixture
def user(session: Session) -> User:
    """A fresh reader."""
    return create_user(session, f"r-{uuid.uuid4().hex[:12]}@example.com", "pw" * 6, None)


def submit(
    session: Session,
    user: User,
    message: str = "What is a node?",
    key: str | None = None,
    **kw: Any,
) -> ChatJob:
    """Submit a job and return it (asserting it is not a replay)."""
    job, replayed = submit_chat_job(session, user.id, ChatJobCreate(message=message, **kw), key)
    assert replayed is False
    return job


def reread(session: Session, job_id: uuid.UUID) -> ChatJob:
    """The job as the database holds it now, not as the identity map remembers it."""
    session.expire_all()
    job = session.get(ChatJob, job_id)
    assert job is not None
    return job


def test_submit_creates_a_conversation_and_a_queued_job(session: Session, user: User) -> None:
    job = submit(session, user, "What is a ROS 2 topic?", page_url="/ros2/topics")

    stored = reread(session, job.id)
    assert stored.status == JobStatus.QUEUED.value
    assert stored.attempts == 0
    assert stored.user_id == user.id
    assert stored.page_url == "/ros2/topics"
    assert stored.citations == []
    conversation = session.get(Conversation, stored.conversation_id)
    assert conversation is not None
    assert conversation.user_id == user.id
    assert conversation.title == "What is a ROS 2 topic?"


def test_idempotent_replay_returns_the_same_job(session: Session, user: User) -> None:
    request = ChatJobCreate(message="Explain QoS")
    first, first_replayed = submit_chat_job(session, user.id, request, "key-1")
    again, replayed = submit_chat_job(
        session, user.id, ChatJobCreate(message="Explain QoS"), "key-1"
    )

    assert (first_replayed, replayed) == (False, True)
    assert again.id == first.id
    assert session.query(ChatJob).filter(ChatJob.user_id == user.id).count() == 1


def test_same_key_with_a_different_body_is_refused(session: Session, user: User) -> None:
    submit(session, user, "Explain QoS", key="key-2")

    with pytest.raises(IdempotencyKeyReused):
        submit_chat_job(session, user.id, ChatJobCreate(message="Explain DDS"), "key-2")


def test_losing_an_idempotency_race_keeps_the_callers_other_work(session: Session) -> None:
    # The reader and a first request with the key are committed by other transactions.
    with Session(bind=session.get_bind(), expire_on_commit=False) as other:
        reader = create_user(other, f"r-{uuid.uuid4().hex[:12]}@example.com", "pw" * 6, None)
        winner, _ = submit_chat_job(other, reader.id, ChatJobCreate(message="Race"), "race-key")
        other.commit()
    # This transaction did other work first; its insert then meets the winner's key.
    earlier = Conversation(user_id=reader.id, title="earlier work in this transaction")
    session.add(earlier)
    session.flush()

    job, replayed = submit_chat_job(session, reader.id, ChatJobCreate(message="Race"), "race-key")

    assert (job.id, replayed) == (winner.id, True)
    session.expire_all()
    assert session.get(Conversation, earlier.id) is not None
    assert session.query(ChatJob).filter(ChatJob.user_id == reader.id).count() == 1
    # The conversation the losing insert opened is gone: the reader has theirs and `earlier`.
    conversations = session.query(Conversation).filter(Conversation.user_id == reader.id)
    assert conversations.count() == 2
    session.rollback()
    with Session(bind=session.get_bind()) as other:  # leave no queued job behind
        other.execute(delete(User).where(User.id == reader.id))
        other.commit()


def test_someone_elses_conversation_is_not_found(session: Session, user: User) -> None:
    other = create_user(session, f"o-{uuid.uuid4().hex[:12]}@example.com", "pw" * 6, None)
    theirs = submit(session, other, "Private question")

    with pytest.raises(NotFound):
        submit_chat_job(
            session,
            user.id,
            ChatJobCreate(message="Peek", conversation_id=theirs.conversation_id),
            None,
        )


def test_a_job_is_claimed_only_once(session: Session, user: User) -> None:
    job = submit(session, user)

    claimed = claim_chat_job(session, job.id, LEASE)
    second = claim_chat_job(session, job.id, LEASE)

    assert claimed is not None
    assert claimed.status == JobStatus.IN_PROGRESS.value
    assert claimed.attempts == 1
    assert claimed.started_at is not None and claimed.lease_expires_at is not None
    assert claimed.lease_expires_at > utcnow() + timedelta(seconds=LEASE - 10)
    assert second is None


def test_an_expired_lease_is_taken_back_then_claimed_as_a_new_attempt(
    session: Session, user: User
) -> None:
    job = submit(session, user)
    assert claim_chat_job(session, job.id, LEASE, "w1") is not None
    session.execute(
        update(ChatJob)
        .where(ChatJob.id == job.id)
        .values(lease_expires_at=utcnow() - timedelta(seconds=5))
    )
    assert claim_chat_job(session, job.id, LEASE) is None  # only the watchdog takes it back

    [taken] = take_back_lost_jobs(session, JobKind.CHAT, utcnow(), max_lost_attempts=3)
    reclaimed = claim_chat_job(session, job.id, LEASE, "w2")

    assert taken.dead is False
    assert reclaimed is not None
    assert reclaimed.attempts == 2
    assert reread(session, job.id).attempts == 2
    assert claim_chat_job(session, job.id, LEASE) is None
    # The first attempt can no longer write its answer over the second's.
    assert complete_chat_job(session, job.id, "stale", [], "m", None, attempt=1) is False
    history = [(a.number, a.worker, a.outcome) for a in job_attempts(session, JobKind.CHAT, job.id)]
    assert history == [(1, "w1", "lost"), (2, "w2", None)]


def test_a_job_lost_too_often_is_dead_lettered(session: Session, user: User) -> None:
    job = submit(session, user)
    for attempt in (1, 2):
        assert claim_chat_job(session, job.id, LEASE) is not None
        session.execute(
            update(ChatJob).where(ChatJob.id == job.id).values(lease_expires_at=utcnow())
        )
        [taken] = take_back_lost_jobs(session, JobKind.CHAT, utcnow(), max_lost_attempts=2)
        assert (taken.attempt, taken.dead) == (attempt, attempt == 2)

    stored = reread(session, job.id)
    assert (stored.status, stored.error_code) == (JobStatus.FAILED.value, "worker_lost")
    assert claim_chat_job(session, job.id, LEASE) is None
    history = session.scalars(
        select(JobAttempt).where(JobAttempt.job_id == job.id).order_by(JobAttempt.number)
    ).all()
    assert [(a.number, a.outcome, a.error_code) for a in history] == [
        (1, AttemptOutcome.LOST.value, None),
        (2, AttemptOutcome.LOST.value, "worker_lost"),
    ]
    assert all(a.ended_at is not None for a in history)


def test_completing_a_cancelled_job_changes_nothing(session: Session, user: User) -> None:
    job = submit(session, user)
    claim_chat_job(session, job.id, LEASE)
    assert cancel_chat_job(session, user.id, job.id).status == JobStatus.CANCELLED.value

    recorded = complete_chat_job(session, job.id, "late answer", [], "extractive", None, attempt=1)

    assert recorded is False
    stored = reread(session, job.id)
    assert stored.status == JobStatus.CANCELLED.value
    assert stored.answer is None
    # Cancelling again is a no-op, not an error.
    assert cancel_chat_job(session, user.id, job.id).status == JobStatus.CANCELLED.value


def test_a_completed_job_cannot_be_cancelled(session: Session, user: User) -> None:
    job = submit(session, user)
    claim_chat_job(session, job.id, LEASE)
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    citations = [{"n": 1, "title": "Nodes"}]
    assert complete_chat_job(session, job.id, "A node [1].", citations, "m", usage, attempt=1)

    with pytest.raises(JobNotCancellable):
        cancel_chat_job(session, user.id, job.id)
    stored = reread(session, job.id)
    assert stored.status == JobStatus.COMPLETED.value
    assert (stored.answer, stored.citations, stored.usage) == ("A node [1].", citations, usage)
    assert stored.lease_expires_at is None and stored.completed_at is not None


def test_fail_records_the_code_and_message(session: Session, user: User) -> None:
    job = submit(session, user)
    claim_chat_job(session, job.id, LEASE)

    assert fail_chat_job(
        session, job.id, "llm_unavailable", "the model had a server error", attempt=1
    )

    stored = reread(session, job.id)
    assert stored.status == JobStatus.FAILED.value
    assert stored.error_code == "llm_unavailable"
    assert stored.error_message == "the model had a server error"
    assert stored.completed_at is not None
    assert fail_chat_job(session, job.id, "again", "no longer running", attempt=1) is False


def test_history_is_the_last_completed_turns_in_order(session: Session, user: User) -> None:
    base = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    first = submit(session, user, "Q0")
    conversation = first.conversation_id
    jobs = [first] + [
        submit(session, user, f"Q{i}", conversation_id=conversation) for i in (1, 2, 3)
    ]
    for i, job in enumerate(jobs):
        job.created_at = base + timedelta(seconds=i)
    later = submit(session, user, "Q5", conversation_id=conversation)
    later.created_at = base + timedelta(seconds=10)
    session.flush()
    for job in (*jobs[:3], later):
        claim_chat_job(session, job.id, LEASE)
        complete_chat_job(session, job.id, f"A-{job.message}", [], "m", None, attempt=1)
    claim_chat_job(session, jobs[3].id, LEASE)
    current = submit(session, user, "Q4", conversation_id=conversation)
    current.created_at = base + timedelta(seconds=5)
    # An unfinished job before the current one is left out.
    failed = submit(session, user, "Qf", conversation_id=conversation)
    failed.created_at = base + timedelta(seconds=4)
    session.flush()

    assert job_context(session, current, 2)[2] == [("Q1", "A-Q1"), ("Q2", "A-Q2")]
    everything = job_context(session, current, 10)[2]
    assert everything == [("Q0", "A-Q0"), ("Q1", "A-Q1"), ("Q2", "A-Q2")]
    assert job_context(session, current, 0)[2] == []
    assert job_context(session, current, 2)[0] == user


def test_timestamps_come_back_aware_in_utc(session: Session, user: User) -> None:
    job = submit(session, user)
    claim_chat_job(session, job.id, LEASE)
    complete_chat_job(session, job.id, "answer", [], "m", None, attempt=1)
    if session.get_bind().dialect.name == "postgresql":
        # A server or session in another zone must not leak its offset into our values.
        session.execute(text("SET LOCAL TIME ZONE 'Asia/Kolkata'"))

    stored = reread(session, job.id)

    stamps = [stored.created_at, stored.started_at, stored.completed_at]
    for stamp in stamps:
        assert stamp is not None and stamp.tzinfo is not None
        assert stamp.utcoffset() == timedelta(0), stamp
    assert stored.started_at is not None and stored.completed_at is not None
    assert abs(utcnow() - stored.created_at) < timedelta(minutes=5)
    assert stored.created_at <= stored.started_at <= stored.completed_at


def test_an_unexpected_failure_keeps_its_traceback_for_the_operator(
    session: Session, user: User
) -> None:
    job = submit(session, user)
    claim_chat_job(session, job.id, LEASE)
    try:
        raise RuntimeError("index folder locked")
    except RuntimeError as exc:
        trace = trace_summary(exc)

    assert fail_chat_job(session, job.id, "internal_error", "no answer", attempt=1, trace=trace)

    [attempt] = job_attempts(session, JobKind.CHAT, job.id)
    assert (attempt.outcome, attempt.error_code) == ("failed", "internal_error")
    assert attempt.traceback is not None
    assert "RuntimeError: index folder locked" in attempt.traceback
