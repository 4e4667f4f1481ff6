"""PostgreSQL never receives a NUL: text from outside a request gets U+FFFD instead."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from common.accounts.users import create_user
from common.jobs.chat_jobs import submit_chat_job
from common.jobs.schemas import ChatJobCreate
from common.platform.db import make_engine, make_session_factory, session_scope
from common.platform.migrate import upgrade_database
from common.platform.models import ChatJob, Role
from tests.support.stack import make_settings


def test_an_answer_holding_nul_is_stored_with_a_replacement_character(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    settings = make_settings(tmp_path / "var", redis_url, postgres_url)
    upgrade_database(settings)
    engine = make_engine(settings)
    try:
        sessions = make_session_factory(engine)
        with session_scope(sessions) as session:
            user = create_user(
                session, f"nul-{tmp_path.name}@example.com", "pw-" * 4, "N", Role.USER
            )
            job, _ = submit_chat_job(
                session, user.id, ChatJobCreate(message="What is a node?"), None
            )
            job.answer = "A node\x00 is a process."  # as a model or a book page might write it
            job_id = job.id
        with session_scope(sessions) as session:
            stored = session.scalar(select(ChatJob.answer).where(ChatJob.id == job_id))
        assert stored == "A node\ufffd is a process."
    finally:
        engine.dispose()
