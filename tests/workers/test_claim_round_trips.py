"""What a chat job's claim costs in statements, on each real database: the reader's first word
waits for every round trip (bench/first_word.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, event, update

from common.jobs.cached_answers import cache_sources
from common.jobs.chat_jobs import complete_chat_job
from common.platform.db import session_scope
from common.platform.models import AnswerFeedback, ChatJob, FeedbackRating, JobStatus
from tests.support.stack import NewStack, Stack
from workers.attempts import Attempt, claim
from workers.cached_answers import CacheProbe, cache_probe, serve_cached, wait_for_twin
from workers.job_stream import JobStream
from workers.resources import WorkerResources


@pytest.fixture(scope="module")
def claim_stack(new_stack: NewStack, database_url: str) -> Iterator[Stack]:
    """The API over each database, no worker: the test claims jobs itself."""
    with new_stack("claims", database_url=database_url, with_worker=False) as running:
        yield running


@pytest.fixture(scope="module")
def res(claim_stack: Stack) -> WorkerResources:
    """A worker's resources over the stack's database and Redis, the answer cache on (one per
    module: the local index's folder takes one client at a time)."""
    settings = claim_stack.settings.model_copy(update={"answer_cache_enabled": True})
    return WorkerResources(settings)


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements sent while the block runs (BEGIN and COMMIT are not statements)."""
    sent: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        sent.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", note)


def test_a_first_turns_claim_is_four_statements(claim_stack: Stack, res: WorkerResources) -> None:
    """The job's row, one read of the account, its profile and the history, then the claim's
    UPDATE and the attempt (reads first: tests/workers/test_write_transactions.py)."""
    headers = claim_stack.signup()
    job_id = uuid.UUID(claim_stack.submit(headers, message="What is a node?")["id"])

    with statements(res.sessions.kw["bind"]) as sent:
        job = claim(res, job_id)

    assert job is not None and job.history == [] and job.spender is not None
    kinds = sorted(statement.split(" ", 2)[0] for statement in sent)
    assert kinds == ["INSERT", "SELECT", "SELECT", "UPDATE"], sent


def test_a_follow_ups_claim_reads_its_history_in_the_same_statement(
    claim_stack: Stack, res: WorkerResources
) -> None:
    headers = claim_stack.signup()
    first = claim_stack.submit(headers, message="What is a node?")
    first_id = uuid.UUID(first["id"])
    assert claim(res, first_id) is not None
    with session_scope(res.sessions) as session:
        complete_chat_job(session, first_id, "A node is a process.", [], "m", None, attempt=1)
    follow_up = claim_stack.submit(
        headers, message="And a topic?", conversation_id=first["conversation_id"]
    )

    with statements(res.sessions.kw["bind"]) as sent:
        job = claim(res, uuid.UUID(follow_up["id"]))

    assert job is not None
    assert job.history == [("What is a node?", "A node is a process.")]
    assert len(sent) == 4, sent  # as a first turn's: the history rides in the context's read


def _claimed(res: WorkerResources, job_id: uuid.UUID) -> tuple[Attempt, CacheProbe]:
    """The job claimed as a worker would, and its probe of the answer cache."""
    job = claim(res, job_id)
    assert job is not None
    attempt = Attempt(res, job, JobStream(res.events, job_id, job.attempt))
    probe = cache_probe(attempt)
    assert probe is not None
    return attempt, probe


def test_near_twins_are_read_in_one_query(claim_stack: Stack, res: WorkerResources) -> None:
    """However many near questions are marked pending, the twin check reads them at once."""
    headers = claim_stack.signup()
    twins = [claim_stack.submit(headers, message=f"What is node {n}?")["id"] for n in (1, 2, 3)]
    job_id = uuid.UUID(claim_stack.submit(headers, message="What is node 4?")["id"])
    attempt, probe = _claimed(res, job_id)
    for twin in twins:  # as near as can be; their numbers tell them apart (`veto`)
        res.answer_cache.mark_pending(probe.key, uuid.UUID(twin), probe.vector)

    with statements(res.sessions.kw["bind"]) as sent:
        wait = wait_for_twin(attempt, probe)

    assert wait is None  # none is the same question: this job answers, marked pending itself
    assert res.answer_cache.is_pending(probe.key, job_id)
    assert len([s for s in sent if s.startswith("SELECT")]) == 1, sent


def test_near_cached_answers_are_read_in_one_query(
    claim_stack: Stack, res: WorkerResources
) -> None:
    """However many stored questions are near, their sources are read at once."""
    headers = claim_stack.signup()
    sources = [claim_stack.submit(headers, message=f"What is topic {n}?")["id"] for n in (1, 2, 3)]
    with session_scope(res.sessions) as session:
        session.execute(
            update(ChatJob)
            .where(ChatJob.id.in_([uuid.UUID(source) for source in sources]))
            .values(status=JobStatus.COMPLETED.value, label="answered", answer="A.", model="m")
        )
    job_id = uuid.UUID(claim_stack.submit(headers, message="What is topic 4?")["id"])
    attempt, probe = _claimed(res, job_id)
    for source in sources:  # as near as can be; their numbers tell them apart (`veto`)
        res.answer_cache.store(probe.key, uuid.UUID(source), probe.vector)

    with statements(res.sessions.kw["bind"]) as sent:
        served = serve_cached(attempt, probe)

    assert served is False
    assert len([s for s in sent if s.startswith("SELECT")]) == 1, sent


def test_a_copy_rated_down_retires_only_its_own_source(
    claim_stack: Stack, res: WorkerResources
) -> None:
    """The one query's rated-down check looks at each source's own copies, no one else's."""
    headers = claim_stack.signup()
    ids = [uuid.UUID(claim_stack.submit(headers, message=f"Q{n}?")["id"]) for n in range(3)]
    kept, retired, copy = ids
    with session_scope(res.sessions) as session:
        done = {"status": JobStatus.COMPLETED.value, "answer": "A.", "model": "m"}
        session.execute(update(ChatJob).where(ChatJob.id.in_(ids)).values(label="answered", **done))
        session.execute(
            update(ChatJob).where(ChatJob.id == copy).values(cached_from_job_id=retired)
        )
        user_id = session.get(ChatJob, copy).user_id  # type: ignore[union-attr]
        session.add(AnswerFeedback(job_id=copy, user_id=user_id, rating=FeedbackRating.DOWN.value))

    with session_scope(res.sessions) as session:
        found = cache_sources(session, [kept, retired])

    assert set(found) == {kept}
