"""Data functions never commit: a job is sent only once the caller's unit of work commits, never
if it rolls back; a refused send fails the row and gives the reservation back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from celery import Celery
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from common.accounts.quotas import Spender
from common.accounts.token_reservations import Reservation, reservation_key
from common.accounts.users import create_user
from common.admin.insights.runs import start_run
from common.jobs.chat_jobs import queue_chat_job
from common.jobs.events import JobEvents
from common.jobs.ingest_jobs import queue_ingest_job
from common.jobs.queue import (
    CHAT_QUEUE,
    INGEST_QUEUE,
    REPROCESS_QUEUE,
    chat_publisher,
    make_celery,
)
from common.jobs.schemas import ChatJobCreate
from common.platform.after_commit import commit
from common.platform.errors import ServiceUnavailable
from common.platform.models import ChatJob, IngestJob, ReprocessJob, User, utcnow
from common.platform.settings import Settings
from tests.support.redis_server import RedisServer
from tests.support.stack import SAMPLE_TEXTBOOK, make_settings


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Redis of this module's own: its queues hold only what these tests send."""
    server = RedisServer(tmp_path_factory.mktemp("broker")).start()
    yield server
    server.stop()


@pytest.fixture
def settings(tmp_path: Path, broker: RedisServer) -> Settings:
    """Settings on the module's broker, with a daily budget so that submits reserve tokens."""
    return make_settings(tmp_path, broker.url, llm_daily_token_budget=1_000_000)


@pytest.fixture
def redis_db(broker: RedisServer) -> Iterator[redis.Redis]:
    """The broker's Redis, emptied after each test."""
    connection = redis.Redis.from_url(broker.url, decode_responses=True)
    yield connection
    connection.flushdb()
    connection.close()


@pytest.fixture
def celery(settings: Settings) -> Celery:
    """A Celery redis_db sending to the module's broker."""
    return make_celery(settings)


def committed_row(engine: Engine, model: type[ChatJob | IngestJob], job_id: uuid.UUID) -> bool:
    """Whether another unit of work sees the job's row (only a committed one is seen)."""
    with Session(engine) as other:
        return other.get(model, job_id) is not None


def new_user(session: Session) -> User:
    return create_user(session, f"r-{uuid.uuid4().hex[:12]}@example.com", "pw" * 6, None)


def submit(
    session: Session, celery: Celery, redis_db: redis.Redis, settings: Settings
) -> tuple[ChatJob, Reservation]:
    reservation = Reservation(redis_db, Spender(()), 500, settings)
    job, replayed = queue_chat_job(
        session,
        celery,
        JobEvents(redis_db),
        new_user(session).id,
        ChatJobCreate(message="What is a node?"),
        reservation=reservation,
    )
    assert replayed is False
    return job, reservation


def test_a_submit_writes_nothing_durable_and_sends_nothing_until_the_commit(
    engine: Engine, session: Session, celery: Celery, redis_db: redis.Redis, settings: Settings
) -> None:
    job, _ = submit(session, celery, redis_db, settings)

    assert redis_db.llen(CHAT_QUEUE) == 0
    assert not committed_row(engine, ChatJob, job.id)
    assert redis_db.exists(reservation_key(job.id)) == 1

    commit(session)

    assert redis_db.llen(CHAT_QUEUE) == 1
    assert committed_row(engine, ChatJob, job.id)
    assert redis_db.exists(reservation_key(job.id)) == 1  # kept: the worker settles it


def test_a_rolled_back_submit_leaves_no_row_no_message_and_no_reservation(
    engine: Engine, session: Session, celery: Celery, redis_db: redis.Redis, settings: Settings
) -> None:
    job_id = submit(session, celery, redis_db, settings)[0].id

    session.rollback()
    session.commit()  # a later unit of work on the same session sends nothing either

    assert session.get(ChatJob, job_id) is None
    assert not committed_row(engine, ChatJob, job_id)
    assert redis_db.llen(CHAT_QUEUE) == 0
    assert redis_db.exists(reservation_key(job_id)) == 0


def test_a_refused_send_fails_the_committed_row_and_gives_the_reservation_back(
    engine: Engine, session: Session, redis_db: redis.Redis, settings: Settings
) -> None:
    unreachable = make_celery(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
    job, _ = submit(session, unreachable, redis_db, settings)

    with pytest.raises(ServiceUnavailable):
        commit(session)

    with Session(engine) as other:
        row = other.get(ChatJob, job.id)
        assert row is not None and (row.status, row.error_code) == ("failed", "queue_unavailable")
    assert redis_db.exists(reservation_key(job.id)) == 0
    # The session stays usable for the rest of its unit of work.
    session.expire_all()
    assert session.get(ChatJob, job.id) is not None


def test_an_ingest_job_is_sent_after_the_commit_and_never_after_a_rollback(
    engine: Engine, session: Session, celery: Celery, redis_db: redis.Redis
) -> None:
    dropped = queue_ingest_job(session, celery, str(SAMPLE_TEXTBOOK)).id
    session.rollback()
    assert redis_db.llen(INGEST_QUEUE) == 0
    assert not committed_row(engine, IngestJob, dropped)

    kept = queue_ingest_job(session, celery, str(SAMPLE_TEXTBOOK))
    assert redis_db.llen(INGEST_QUEUE) == 0
    commit(session)

    assert redis_db.llen(INGEST_QUEUE) == 1
    assert committed_row(engine, IngestJob, kept.id)


def test_an_insights_run_is_sent_after_the_commit_and_failed_if_the_broker_refuses(
    engine: Engine, session: Session, celery: Celery, redis_db: redis.Redis, settings: Settings
) -> None:
    until = utcnow()
    run = start_run(session, celery, until - timedelta(days=7), until, None)
    assert redis_db.llen(REPROCESS_QUEUE) == 0
    commit(session)
    assert redis_db.llen(REPROCESS_QUEUE) == 1

    unreachable = make_celery(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
    refused = start_run(session, unreachable, until - timedelta(days=30), until, None)
    with pytest.raises(ServiceUnavailable):
        commit(session)

    with Session(engine) as other:
        row = other.get(ReprocessJob, refused.id)
        assert row is not None and (row.status, row.error_code) == ("failed", "queue_unavailable")
        assert other.get(ReprocessJob, run.id) is not None


def test_a_refused_send_carrying_its_event_fails_the_committed_row_too(
    engine: Engine, session: Session, settings: Settings
) -> None:
    """Broker and events on one Redis, as `bookchat` runs them: one script carries both."""
    down = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    unreachable = make_celery(down)
    events = JobEvents(redis.Redis.from_url("redis://127.0.0.1:1/0"))
    assert chat_publisher(unreachable).shares_database(events.client)
    job, _ = queue_chat_job(
        session, unreachable, events, new_user(session).id, ChatJobCreate(message="A node?")
    )

    with pytest.raises(ServiceUnavailable):
        commit(session)

    with Session(engine) as other:
        row = other.get(ChatJob, job.id)
        assert row is not None and (row.status, row.error_code) == ("failed", "queue_unavailable")
