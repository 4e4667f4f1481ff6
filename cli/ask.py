"""`bookchat ask`: submit a question through the queue as the local CLI user, print the answer."""

from __future__ import annotations

import json
import secrets
import sys
import time

from sqlalchemy import select

from common.accounts import create_user
from common.chat_jobs import queue_chat_job
from common.db import make_engine, make_session_factory, session_scope
from common.events import TERMINAL_EVENTS, JobEvents
from common.migrate import upgrade_database
from common.models import ChatJob, User
from common.queue import make_celery
from common.redis_client import make_redis
from common.schemas import ChatJobCreate
from common.settings import Settings

CLI_USER_EMAIL = "cli@bookchat.local"


def ask_via_queue(settings: Settings, question: str, *, timeout: float, as_json: bool) -> int:
    """Queue the question, stream the answer to stdout and list its citations."""
    upgrade_database(settings)
    sessions = make_session_factory(make_engine(settings))
    events = JobEvents(make_redis(settings))
    with session_scope(sessions) as session:
        user = session.scalar(select(User).where(User.email == CLI_USER_EMAIL))
        if user is None:
            user = create_user(session, CLI_USER_EMAIL, secrets.token_urlsafe(24), "CLI")
        job, _ = queue_chat_job(
            session, make_celery(settings), events, user.id, ChatJobCreate(message=question)
        )
    after, deadline = "0-0", time.monotonic() + timeout
    finished = False
    while not finished and time.monotonic() < deadline:
        for event in events.read(job.id, after, block_ms=1000):
            after = event.id
            if event.event == "delta" and not as_json:
                print(event.data["text"], end="", flush=True)
            finished = finished or event.event in TERMINAL_EVENTS
    with session_scope(sessions) as session:
        row = session.get(ChatJob, job.id)
        assert row is not None
        return _report(row, finished, as_json)


def _report(job: ChatJob, finished: bool, as_json: bool) -> int:
    if as_json:
        print(
            json.dumps(
                {
                    "id": str(job.id),
                    "status": job.status,
                    "answer": job.answer,
                    "citations": job.citations,
                    "model": job.model,
                    "error": job.error_code,
                },
                indent=2,
            )
        )
    elif not finished:
        print(
            f"\nno answer yet (job {job.id} is {job.status}); is a worker running?", file=sys.stderr
        )
    elif job.status == "completed":
        print("\n")
        for citation in job.citations:
            print(
                f"[{citation['n']}] {citation['title']} — {citation['heading']} ({citation['url']})"
            )
    else:
        print(f"\njob {job.status}: {job.error_message or ''}", file=sys.stderr)
    return 0 if job.status == "completed" else 1
