"""`bookchat ask`: submit a question through the queue as the local CLI user, print the answer."""

from __future__ import annotations

import secrets
import sys
import time
from typing import TextIO

from sqlalchemy import select

from cli.terminal import printable, safe_json
from common.accounts.users import create_user
from common.jobs.chat_jobs import queue_chat_job
from common.jobs.events import TERMINAL_EVENTS, JobEvent, JobEvents
from common.jobs.job_endings import incomplete_details
from common.jobs.queue import make_celery
from common.jobs.schemas import ChatJobCreate
from common.platform.db import make_engine, make_session_factory, session_scope
from common.platform.migrate import upgrade_database
from common.platform.models import ChatJob, JobStatus, User
from common.platform.redis_client import make_redis
from common.platform.settings import Settings

CLI_USER_EMAIL = "cli@bookchat.local"
ANSWERED = (JobStatus.COMPLETED.value, JobStatus.INCOMPLETE.value)


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
    printer = AnswerPrinter(quiet=as_json)
    while not printer.finished and time.monotonic() < deadline:
        for event in events.read(job.id, after, block_ms=1000):
            after = event.id
            if printer.take(event):
                break
    finished = printer.finished
    with session_scope(sessions) as session:
        row = session.get(ChatJob, job.id)
        assert row is not None
        return _report(row, finished, as_json)


class AnswerPrinter:
    """Prints a stream's answer by the client rule (docs/api.md, "Events") and sees its end.

    A `reset` starts the answer over (on a new line: printed text cannot be taken back); a
    delta of an older attempt than the newest seen is ignored; the first `done` or `error`
    ends the stream.
    """

    def __init__(self, quiet: bool = False, out: TextIO | None = None) -> None:
        self.quiet = quiet
        self.out = out or sys.stdout
        self.attempt = 0
        self.printed = False
        self.finished = False

    def take(self, event: JobEvent) -> bool:
        """Apply one event; True once the stream has ended."""
        kind, data = event.event, event.data
        if kind in ("status", "reset") and "attempt" in data:
            self.attempt = max(self.attempt, int(data["attempt"]))
        if kind == "reset" and self.printed:
            self._write("\n")
            self.printed = False
        elif kind == "delta" and int(data.get("attempt", self.attempt)) >= self.attempt:
            self._write(data["text"])
            self.printed = True
        self.finished = kind in TERMINAL_EVENTS
        return self.finished

    def _write(self, text: str) -> None:
        if not self.quiet:
            # The answer's lines and tabs stay; any other control is shown, not obeyed.
            print(printable(text, keep="\n\t"), end="", flush=True, file=self.out)


CUT_OFF_EXIT = 3  # an answer came, but the model stopped early (status `incomplete`)


def _report(job: ChatJob, finished: bool, as_json: bool) -> int:
    if as_json:
        print(
            safe_json(
                {
                    "id": str(job.id),
                    "status": job.status,
                    "answer": job.answer,
                    "citations": job.citations,
                    "sources": job.sources or [],
                    "incomplete_details": incomplete_details(job.incomplete_reason),
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
    elif job.status in ANSWERED:
        print("\n")
        if job.status == JobStatus.INCOMPLETE.value:
            print(cut_off_note(job.incomplete_reason), file=sys.stderr)
        for citation in job.citations:
            print(
                printable(
                    f"[{citation['n']}] {citation['title']} — {citation['heading']} "
                    f"({citation['url']})"
                )
            )
        if job.sources:
            print(f"({len(job.sources)} more passages were retrieved but not cited)")
    else:
        print("\n" + printable(f"job {job.status}: {job.error_message or ''}"), file=sys.stderr)
    if job.status == JobStatus.INCOMPLETE.value:
        return CUT_OFF_EXIT
    return 0 if job.status == JobStatus.COMPLETED.value else 1


def cut_off_note(reason: str | None) -> str:
    """What the reader is told about an answer that stops early."""
    why = "its content filter" if reason == "content_filter" else "its length limit"
    return f"The answer was cut off: the model stopped at {why}."
