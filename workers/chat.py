"""Running one chat-queue job: claim it, produce a chat answer or a chapter, record the outcome.

`workers/chat_runner.py` answers a question and `workers/chapter_runner.py` rewrites a
chapter; `workers/outcomes.py` records how the attempt ended.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from redis import RedisError

from common.accounts.quotas import BUDGET_EXHAUSTED, budget_refusal
from common.accounts.token_reservations import budget_allows
from common.book.retrieval.passages import Passage
from common.jobs.lifecycle import trace_summary
from common.llm.base import Answer, GenerationStopped
from common.llm.citations import CitedAnswer, resolve_citations
from common.llm.errors import LLMError, RetryLater
from common.platform.db import is_unavailable
from common.platform.models import AttemptOutcome, JobKind, JobStatus
from workers.attempts import Attempt, AttemptLost, HandBack, WaitForIndex, claim
from workers.cached_answers import (
    CacheProbe,
    cache_probe,
    remember,
    serve_cached,
    wait_for_twin,
)
from workers.chapter_runner import rewrite_chapter
from workers.chat_runner import answer_question
from workers.job_stream import JobStream
from workers.outcomes import cancel, fail, finish, release, requeue, settle, spent
from workers.resources import WorkerResources

log = logging.getLogger(__name__)
LEFT_FAST_LANE = "not in the answer cache: it leaves the fast lane"


def answer_chat_job(res: WorkerResources, job_id: uuid.UUID, fast_lane: bool = False) -> None:
    """Run one chat job to completion; safe to call again for the same job.

    A job that must wait (model capacity, the first index) goes back to `queued` with a due
    time; a worker shutting down hands it back at once; the watchdog re-runs it if this
    worker dies. Database writes ride out short outages. A job taken from the fast lane
    (`fast_lane`) that the cache does not answer goes back to the chat queue.
    """
    job = claim(res, job_id)
    if job is None:
        log.info("chat job %s is not runnable (finished, cancelled, running or not due)", job_id)
        return
    settings = res.settings
    stream = JobStream(
        res.events,
        job_id,
        job.attempt,
        flush_interval_s=settings.delta_flush_ms / 1000,
        flush_chars=settings.delta_flush_chars,
    )
    res.leases.hold(JobKind.CHAT, job_id, job.attempt)
    try:
        _run_attempt(Attempt(res, job, stream), fast_lane)
    finally:
        res.leases.release(JobKind.CHAT, job_id)
        stream.drain(res.retry_policy.outage_bound_s)


def _run_attempt(attempt: Attempt, fast_lane: bool) -> None:
    served, probe = _from_cache(attempt)
    if served:
        return
    if isinstance(probe, RetryLater):
        requeue(attempt, probe)
        return
    if fast_lane:
        # The fast lane's threads (workers/fast_lane.py) never wait for the model: the
        # watchdog sends the job to the chat queue now (a wait, not an attempt).
        release(attempt, AttemptOutcome.REQUEUED, 0.0, LEFT_FAST_LANE, wait=True)
        return
    attempt.publish("status", {"status": JobStatus.IN_PROGRESS.value, "attempt": attempt.number})
    if attempt.number > 1:
        # Readers drop any partial text of an earlier attempt (see "Events" in docs/api.md).
        reset = {"attempt": attempt.number, "reason": "a new attempt starts over"}
        attempt.publish("reset", reset)
    try:
        produced = _produce(attempt)
    except Exception as exc:
        if not _stopped(attempt, exc):
            raise  # an unreachable database leaves the job to the watchdog
        return
    if produced is None:
        return
    answer, passages = produced
    # A chapter rewrite cites nothing: its brackets are the chapter's own text.
    chat = attempt.job.task == "chat"
    cited = resolve_citations(answer.text, passages) if chat else CitedAnswer(answer.text)
    if chat and not passages and attempt.closest:
        cited = replace(cited, sources=resolve_citations("", attempt.closest).sources)
    if finish(attempt, answer, cited) and probe is not None:
        remember(attempt, probe, answer, cited)


def _from_cache(attempt: Attempt) -> tuple[bool, CacheProbe | RetryLater | None]:
    """Whether the cache answered the job; its probe (to store its answer later), or the wait
    for a twin being answered now.

    Anything going wrong here only means the model answers: the cache is an optimisation.
    """
    try:
        probe = cache_probe(attempt)
        if probe is None:
            return False, None
        if serve_cached(attempt, probe):
            return True, probe
        wait = wait_for_twin(attempt, probe)
        if wait is not None:
            return False, RetryLater(wait, "waiting for the same question's answer")
        if serve_cached(attempt, probe):  # a twin may have finished since the first look
            return True, probe
    except Exception:
        log.warning("the answer cache failed for chat job %s", attempt.job.id, exc_info=True)
        return False, None
    if not attempt.job.selected_text:
        attempt.query_vector = probe.vector  # retrieval searches for the same question
    return False, probe


def _produce(attempt: Attempt) -> tuple[Answer, list[Passage]] | None:
    """The job's text and the passages it may cite; None if the budget refused it."""
    res = attempt.res
    if not budget_allows(res.redis, attempt.job.id, res.settings.llm_daily_token_budget):
        settle(attempt, 0)
        fail(attempt, BUDGET_EXHAUSTED, budget_refusal())
        return None
    if attempt.job.task == "chat":
        return answer_question(attempt)
    return rewrite_chapter(attempt), []


def _stopped(attempt: Attempt, exc: Exception) -> bool:
    """Record how an attempt that raised ended; False if the error must propagate."""
    for kinds, handle in _STOPS:
        if isinstance(exc, kinds):
            handle(attempt, exc)
            return True
    if not is_unavailable(exc):
        settle(attempt, spent(attempt.stats))
        message = "the answer could not be produced"
        fail(attempt, "internal_error", message, trace=trace_summary(exc))
    return False


def _cancelled(attempt: Attempt, _: GenerationStopped) -> None:
    log.info("chat job %s was cancelled while generating", attempt.job.id)
    cancel(attempt)


def _lost(attempt: Attempt, _: AttemptLost) -> None:
    log.warning("chat job %s was taken from attempt %d; stopping", attempt.job.id, attempt.number)


def _handed_back(attempt: Attempt, _: HandBack) -> None:
    release(attempt, AttemptOutcome.HANDED_BACK, 0.0, "the worker stopped")


def _model_failed(attempt: Attempt, exc: LLMError) -> None:
    settle(attempt, spent(attempt.stats))
    fail(attempt, exc.code, exc.message, attempt.metrics())


def _timed_out(attempt: Attempt, _: SoftTimeLimitExceeded) -> None:
    settle(attempt, spent(attempt.stats))
    fail(attempt, "timeout", "answering took too long")


def _redis_away(attempt: Attempt, _: RedisError) -> None:
    # Only before a model call (the bookkeeping after one never raises): wait, don't fail.
    delay = attempt.res.retry_policy.requeue_delay_s
    requeue(attempt, RetryLater(delay, "Redis is unreachable"))


# In order: the first kind that matches decides how the attempt ends.
_STOPS: tuple[tuple[type[Exception] | tuple[type[Exception], ...], Callable[..., Any]], ...] = (
    (GenerationStopped, _cancelled),
    (AttemptLost, _lost),
    (HandBack, _handed_back),
    ((RetryLater, WaitForIndex), requeue),
    (LLMError, _model_failed),
    (SoftTimeLimitExceeded, _timed_out),
    (RedisError, _redis_away),
)
