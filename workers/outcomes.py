"""How an attempt of a chat-queue job ends: answered, failed, cancelled or put back to wait."""

from __future__ import annotations

import logging
from datetime import UTC
from typing import Any

from redis import RedisError
from sqlalchemy.orm import Session

from common.accounts.quotas import usage_tokens
from common.accounts.token_reservations import settle_tokens
from common.jobs.admission import record_finished
from common.jobs.answer_labels import label_answer
from common.jobs.chat_jobs import complete_chat_job, fail_chat_job
from common.jobs.job_endings import ending_events
from common.jobs.lifecycle import end_attempt, finish_attempt, release_attempt
from common.llm.base import Answer
from common.llm.citations import CitedAnswer
from common.llm.errors import RetryLater
from common.llm.metrics import CallStats
from common.platform.models import AttemptOutcome, JobKind, JobStatus, utcnow
from workers.attempts import Attempt, JobInput, WaitForIndex
from workers.resources import WorkerResources

log = logging.getLogger(__name__)
CANCELLED = AttemptOutcome.CANCELLED


def finish(attempt: Attempt, answer: Answer, cited: CitedAnswer) -> bool:
    """Record the answer with what it cites, settle its tokens, then end the stream.

    The paid answer is written first; the settlement is best-effort, and until it lands the
    job's quotas count its estimate, which errs high. False if the job was no longer this
    attempt's.
    """
    recorded = _record_answer(attempt, answer, cited)
    # Spent whether or not the row is still this attempt's (a lost lease re-runs the job).
    settle(attempt, max(usage_tokens(answer.usage), spent(attempt.stats)))
    if not recorded:
        return False
    count_finished(attempt.res)
    if cited.text != answer.text:
        # Markers that named no passage were dropped: readers replace the streamed text.
        attempt.publish("reset", {"attempt": attempt.number, "reason": "citations were checked"})
        attempt.publish("delta", {"text": cited.text, "attempt": attempt.number})
    status = JobStatus.INCOMPLETE if answer.incomplete_reason else JobStatus.COMPLETED
    extra = {"model": answer.model, "usage": answer.usage}
    ending = ending_events(
        status.value, cited.citations, cited.sources, answer.incomplete_reason, **extra
    )
    for event, data in ending:
        attempt.publish(event, data)
    return True


def _record_answer(attempt: Attempt, answer: Answer, cited: CitedAnswer) -> bool:
    metrics = attempt.metrics()
    job_id = attempt.job.id
    # Worked out before the transaction, and written by its one UPDATE of the job: on SQLite
    # the write lock is held from the first write to the commit.
    columns = {**_label_columns(attempt, cited), **_profile_columns(answer.profile_applied)}
    return attempt.record(
        lambda s: complete_chat_job(
            s,
            job_id,
            cited.text,
            cited.citations,
            answer.model,
            answer.usage,
            metrics,
            attempt=attempt.number,
            sources=cited.sources,
            incomplete_reason=answer.incomplete_reason,
            columns=columns,
        ),
    )


def _label_columns(attempt: Attempt, cited: CitedAnswer) -> dict[str, Any]:
    """A chat answer's label for the author (common/jobs/answer_labels.py)."""
    if attempt.job.task != "chat":
        return {}
    coverage = attempt.coverage
    label = label_answer(coverage, cited.text, len(cited.citations))
    return {
        "label": label.value,
        "top_similarity": round(coverage.top_similarity, 4) if coverage is not None else None,
    }


def _profile_columns(applied: tuple[str, ...] | None) -> dict[str, Any]:
    """Which profile fields shaped the answer, if a profile applied."""
    return {"profile_applied": list(applied)} if applied is not None else {}


def cancel(attempt: Attempt) -> None:
    """End an attempt whose job was cancelled while it ran."""
    # Cancelled before any model call: give the reservation back. A model stream cut off
    # mid-way reports no usage, so that job keeps its estimate.
    if attempt.stats.llm_calls == 0:
        settle(attempt, 0)
    job = attempt.job
    attempt.record(lambda s: _end_cancelled(s, job))
    count_finished(attempt.res)


def _end_cancelled(session: Session, job: JobInput) -> None:
    # The row is normally cancelled already; if only the flag was set, the flag still wins.
    if not finish_attempt(session, JobKind.CHAT, job.id, job.attempt, JobStatus.CANCELLED):
        end_attempt(session, JobKind.CHAT, job.id, job.attempt, CANCELLED)


def requeue(attempt: Attempt, wait: RetryLater | WaitForIndex) -> None:
    """Put the job back until it is due again, or fail it once it has waited too long.

    A claim that called no model only waited: it counts in `waits`, not `attempts`. A job
    waiting on an open circuit is not failed by the bound before the circuit has probed the
    provider since the job was queued: the probe's answer is the one the job waits for.
    """
    policy = attempt.res.retry_policy
    attempt.stats.requeues += 1
    waited = (utcnow() - attempt.job.queued_at).total_seconds()
    if waited + wait.delay > policy.max_job_wait_s and _bound_applies(wait, attempt.job):
        code = "index_unavailable" if isinstance(wait, WaitForIndex) else "llm_unavailable"
        message = f"gave up after waiting {waited:.0f}s ({wait.reason})"
        fail(attempt, code, message, attempt.metrics())
        return
    due_in = min(wait.delay, policy.max_requeue_delay_s)
    outcome, only_waited = AttemptOutcome.REQUEUED, attempt.stats.llm_calls == 0
    release(attempt, outcome, due_in, wait.reason, wait=only_waited)


def _bound_applies(wait: RetryLater | WaitForIndex, job: JobInput) -> bool:
    if not isinstance(wait, RetryLater) or not wait.circuit_open:
        return True
    queued_at = job.queued_at
    if queued_at.tzinfo is None:  # SQLite hands back naive UTC
        queued_at = queued_at.replace(tzinfo=UTC)
    return wait.probed_at is not None and wait.probed_at > queued_at.timestamp()


def release(
    attempt: Attempt, outcome: AttemptOutcome, due_in: float, reason: str, wait: bool = False
) -> None:
    """Give the job back to the queue, due in `due_in` seconds, and tell its stream."""
    metrics = attempt.metrics()
    job_id, number = attempt.job.id, attempt.number
    released = attempt.record(
        lambda s: release_attempt(
            s, JobKind.CHAT, job_id, number, outcome, due_in, reason, wait, metrics=metrics
        ),
    )
    if released:
        status = {"status": JobStatus.QUEUED.value, "retry_in": round(due_in, 2), "reason": reason}
        attempt.publish("status", status)


def fail(
    attempt: Attempt,
    code: str,
    message: str,
    metrics: dict[str, Any] | None = None,
    trace: str | None = None,
) -> None:
    """Mark the attempt's job failed and tell its stream."""
    job_id, number = attempt.job.id, attempt.number
    recorded = attempt.record(
        lambda s: fail_chat_job(s, job_id, code, message, metrics, attempt=number, trace=trace),
    )
    if recorded:
        count_finished(attempt.res)
        attempt.publish("error", {"code": code, "message": message})


def count_finished(res: WorkerResources) -> None:
    """Count the job into the drain rate that admission control's Retry-After comes from."""
    try:
        record_finished(res.events.client)
    except RedisError:
        log.debug("could not count a finished chat job", exc_info=True)


def spent(stats: CallStats) -> int:
    """Tokens this attempt's finished model calls reported."""
    return stats.prompt_tokens + stats.completion_tokens


def settle(attempt: Attempt, tokens: int) -> None:
    """Replace the job's token reservation with what it spent (0 gives it back), once."""
    res, job = attempt.res, attempt.job
    budget = res.settings.llm_daily_token_budget
    try:
        settle_tokens(res.redis, job.id, tokens, fallback=job.spender, budget=budget)
    except RedisError:
        # A lost settlement counts the estimate (or nothing) until midnight; never fail a job.
        log.warning("could not settle chat job %s's tokens", job.id, exc_info=True)
