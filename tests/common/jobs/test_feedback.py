"""Readers' ratings against each real database: own jobs only, one per reader, replaced, deleted."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import Insert, delete, event, func, select, update
from sqlalchemy.orm import ORMExecuteState, Session

from common.accounts.guest_retention import purge_old_guests
from common.accounts.users import adopt_guest, create_guest, create_user, delete_account
from common.jobs.chat_jobs import submit_chat_job
from common.jobs.conversations import delete_conversation
from common.jobs.feedback import (
    feedback_by_job,
    feedback_of_job,
    find_feedback,
    rate_answer,
    withdraw_feedback,
)
from common.jobs.schemas import ChatJobCreate, FeedbackIn
from common.platform.errors import JobNotRateable, NotFound
from common.platform.models import AnswerFeedback, ChatJob, JobStatus, User, utcnow


def reader(session: Session) -> User:
    """A fresh reader."""
    return create_user(session, f"r-{uuid.uuid4().hex[:12]}@example.com", "pw" * 6, None)


def answered_job(session: Session, user: User, status: JobStatus = JobStatus.COMPLETED) -> ChatJob:
    """A job of the user's, finished with an answer (or left in `status`)."""
    job, _ = submit_chat_job(session, user.id, ChatJobCreate(message="What is a node?"), None)
    session.execute(
        update(ChatJob)
        .where(ChatJob.id == job.id)
        .values(status=status.value, answer="A node is a process [1].", completed_at=utcnow())
    )
    session.flush()
    return job


def count(session: Session) -> int:
    """Ratings stored, in all."""
    return session.scalar(select(func.count()).select_from(AnswerFeedback)) or 0


@pytest.mark.parametrize("status", [JobStatus.COMPLETED, JobStatus.INCOMPLETE])
def test_a_reader_rates_a_finished_answer_once_and_replaces_it(
    session: Session, status: JobStatus
) -> None:
    user = reader(session)
    job = answered_job(session, user, status)

    first, created = rate_answer(session, user.id, job.id, FeedbackIn(rating="up"))
    assert created is True and first.rating == "up" and first.reason is None
    again, created_again = rate_answer(
        session,
        user.id,
        job.id,
        FeedbackIn(rating="down", reason="wrong", comment="  It says the opposite.  "),
    )

    assert created_again is False
    assert (again.rating, again.reason, again.comment) == ("down", "wrong", "It says the opposite.")
    stored = session.scalars(select(AnswerFeedback).where(AnswerFeedback.job_id == job.id)).all()
    assert len(stored) == 1 and stored[0].rating == "down"
    assert stored[0].updated_at >= stored[0].created_at
    assert feedback_of_job(session, job) is not None


def test_another_readers_job_is_not_found(session: Session) -> None:
    owner, other = reader(session), reader(session)
    job = answered_job(session, owner)

    with pytest.raises(NotFound):
        rate_answer(session, other.id, job.id, FeedbackIn(rating="up"))
    with pytest.raises(NotFound):
        withdraw_feedback(session, other.id, job.id)
    assert find_feedback(session, other.id, job.id) is None


@pytest.mark.parametrize(
    "status",
    [JobStatus.QUEUED, JobStatus.IN_PROGRESS, JobStatus.FAILED, JobStatus.CANCELLED],
)
def test_only_a_finished_answer_can_be_rated(session: Session, status: JobStatus) -> None:
    user = reader(session)
    job = answered_job(session, user, status)

    with pytest.raises(JobNotRateable):
        rate_answer(session, user.id, job.id, FeedbackIn(rating="up"))
    assert feedback_of_job(session, job) is None


def test_a_guest_rates_and_signing_up_keeps_the_rating(session: Session) -> None:
    guest = create_guest(session)
    job = answered_job(session, guest)
    rate_answer(session, guest.id, job.id, FeedbackIn(rating="down", reason="unclear"))
    user = reader(session)

    adopt_guest(session, guest.id, user.id)
    session.expire_all()

    kept = find_feedback(session, user.id, job.id)
    assert kept is not None and kept.reason == "unclear"


def test_withdrawing_removes_the_rating(session: Session) -> None:
    user = reader(session)
    job = answered_job(session, user)
    rate_answer(session, user.id, job.id, FeedbackIn(rating="up"))

    assert withdraw_feedback(session, user.id, job.id) is True
    assert withdraw_feedback(session, user.id, job.id) is False
    assert find_feedback(session, user.id, job.id) is None


def test_ratings_go_with_the_account_the_conversation_and_old_guests(session: Session) -> None:
    before = count(session)
    user, guest = reader(session), create_guest(session)
    kept_user = reader(session)
    jobs = [answered_job(session, who) for who in (user, user, guest, kept_user)]
    for job, who in zip(jobs, (user, user, guest, kept_user), strict=True):
        rate_answer(session, who.id, job.id, FeedbackIn(rating="up"))
    assert count(session) == before + 4

    assert jobs[0].conversation_id is not None
    delete_conversation(session, user.id, jobs[0].conversation_id)
    assert count(session) == before + 3
    delete_account(session, user.id)
    assert count(session) == before + 2
    session.execute(
        update(User).where(User.id == guest.id).values(created_at=utcnow() - timedelta(days=30))
    )
    assert guest.id in purge_old_guests(session, utcnow(), retention_days=7)

    assert count(session) == before + 1
    assert set(feedback_by_job(session, kept_user.id, [jobs[3].id])) == {jobs[3].id}


def test_a_reason_goes_only_with_a_thumbs_down() -> None:
    with pytest.raises(ValueError, match="only with a thumbs down"):
        FeedbackIn(rating="up", reason="wrong")
    assert FeedbackIn(rating="down", comment="   ").comment is None


def test_a_job_deleted_while_it_is_rated_is_not_found(session: Session) -> None:
    user = reader(session)
    job = answered_job(session, user)

    def delete_the_job_first(state: ORMExecuteState) -> None:
        # The conversation's deletion lands between the job's read and the rating's insert.
        statement = state.statement
        if isinstance(statement, Insert) and statement.table.name == "answer_feedback":
            state.session.connection().execute(delete(ChatJob).where(ChatJob.id == job.id))

    event.listen(session, "do_orm_execute", delete_the_job_first)
    try:
        with pytest.raises(NotFound):
            rate_answer(session, user.id, job.id, FeedbackIn(rating="up"))
    finally:
        event.remove(session, "do_orm_execute", delete_the_job_first)
