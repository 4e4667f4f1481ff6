"""One attempt at a chat-queue job (a chat answer or a chapter rewrite) and what it carries.

`claim` starts the attempt and reads the job's input; an `Attempt` carries the resources, the
input, the event stream and the call statistics that its steps share (`workers/chat.py` runs it,
a runner per kind produces the text, `workers/outcomes.py` records the end); the exceptions
below stop it early.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from common.accounts.profiles import ReaderProfileIn
from common.accounts.quotas import Spender, spender_of
from common.book.retrieval.guardrail import Coverage
from common.book.retrieval.passages import Passage
from common.jobs.chat_jobs import claim_chat_job, job_context, runnable_chat_job
from common.llm.base import GenerationStopped
from common.llm.metrics import CallStats
from common.platform.db import run_unit
from common.platform.models import JobKind
from workers.job_stream import JobStream
from workers.resources import WorkerResources

T = TypeVar("T")
INDEX_POLL_S = 2.0


@dataclass(frozen=True)
class JobInput:
    """What a claimed chat-queue job asks for, read once when it is claimed."""

    id: uuid.UUID
    message: str
    selected_text: str | None
    page_url: str | None
    history: list[tuple[str, str]]
    attempt: int
    queued_at: datetime
    metrics: dict[str, Any] | None
    profile: ReaderProfileIn | None = None
    owner: uuid.UUID | None = None
    # Whose quotas a job submitted without a reservation (a chapter job) is charged to.
    spender: Spender | None = None
    task: str = "chat"  # or a chapter job: "personalize", "translate" (workers/chapter_runner.py)
    language: str | None = None


def claim(res: WorkerResources, job_id: uuid.UUID) -> JobInput | None:
    """Start a new attempt of the job and read its input; None when it is not runnable."""
    return record(res, lambda session: _claim_in(session, res, job_id))


def _claim_in(session: Session, res: WorkerResources, job_id: uuid.UUID) -> JobInput | None:
    # Every read first, the claim's two writes last: on SQLite the write lock is taken at the
    # first write and held to the commit, and the web's submits wait for it meanwhile.
    job = runnable_chat_job(session, job_id)
    if job is None:
        return None
    chat = job.task == "chat"  # chapter jobs have no conversation
    turns = res.settings.history_turns if chat else 0
    user, profile, history = job_context(session, job, turns)
    job = claim_chat_job(session, job_id, res.retry_policy.job_lease_s, res.worker_name)
    if job is None:  # another worker claimed it since the read
        return None
    spender = (
        spender_of(res.settings, user.id, user.role, user.email, user.external_id)
        if user is not None
        else None
    )
    return JobInput(
        job.id,
        job.message,
        job.selected_text,
        job.page_url,
        history,
        job.attempts,
        job.queued_at or job.created_at,
        job.metrics,
        profile,
        owner=job.user_id,
        spender=spender,
        task=job.task,
        language=job.language,
    )


class HandBack(Exception):
    """The worker is shutting down: give the job back to the queue now."""


class AttemptLost(Exception):
    """The job was taken from this attempt (its lease ran out); stop without writing."""


class WaitForIndex(Exception):
    """No textbook index exists yet; the job waits for the first ingest."""

    delay = INDEX_POLL_S
    reason = "waiting for the textbook to be indexed"


def record(res: WorkerResources, write: Callable[[Session], T]) -> T:
    """Run one unit of work, riding out a short database outage."""
    return run_unit(res.sessions, write, res.retry_policy.outage_bound_s)


@dataclass
class Attempt:
    """One attempt at a claimed job: what its steps share, from the claim to the outcome."""

    res: WorkerResources
    job: JobInput
    stream: JobStream
    stats: CallStats = field(default_factory=CallStats)
    # What retrieval found, for the answer's label: the guardrail's verdict (None when the
    # reader's selection was the subject), and the passages it judged too far to answer from.
    coverage: Coverage | None = None
    closest: list[Passage] = field(default_factory=list)
    # The question's embedding when the answer cache computed it: retrieval reuses it.
    query_vector: list[float] | None = None

    @property
    def number(self) -> int:
        """The attempt's number, which every write and event of the attempt names."""
        return self.job.attempt

    def record(self, write: Callable[[Session], T]) -> T:
        """Run one unit of work, riding out a short database outage."""
        return record(self.res, write)

    def metrics(self) -> dict[str, Any]:
        """The job's metrics with this attempt's calls added."""
        return self.stats.merged_into(self.job.metrics)

    def check_still_ours(self) -> None:
        """Stop if the lease was lost or the worker is shutting down."""
        if self.res.leases.lost(JobKind.CHAT, self.job.id):
            raise AttemptLost()
        if self.res.shutting_down.is_set():
            raise HandBack()

    def on_delta(self, text: str) -> None:
        """Stream a piece of the answer; stop generating once the job is cancelled."""
        self.check_still_ours()
        if self.stream.delta(text):  # the flush that sends a batch reads the cancel flag too
            raise GenerationStopped()

    def on_restart(self) -> None:
        """Tell readers to drop the text of a model call that is being retried."""
        self.publish("reset", {"attempt": self.number, "reason": "the model call was retried"})

    def publish(self, event: str, data: dict[str, Any]) -> None:
        """Send one event to the job's stream."""
        self.stream.publish(event, data)
