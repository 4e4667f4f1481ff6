"""Answering one chat job: claim it, retrieve, generate with streamed deltas, record the outcome."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from redis import RedisError
from sqlalchemy import update
from sqlalchemy.orm import Session

from common.admission import record_finished
from common.chat_jobs import (
    claim_chat_job,
    complete_chat_job,
    conversation_history,
    fail_chat_job,
)
from common.db import is_unavailable, run_unit
from common.job_endings import ending_events
from common.lifecycle import end_attempt, finish_attempt, release_attempt, trace_summary
from common.llm.base import Answer, AnswerRequest, DeltaSink, GenerationStopped
from common.llm.citations import CitedAnswer, resolve_citations
from common.llm.errors import LLMError, RetryLater
from common.llm.metrics import CallStats
from common.llm.personalize import profile_guidance
from common.llm.prompts import NOT_IN_BOOK, NOT_IN_SELECTION
from common.models import AttemptOutcome, ChatJob, JobKind, JobStatus, User, utcnow
from common.profiles import ReaderProfileIn, get_profile
from common.quotas import BUDGET_EXHAUSTED, Spender, budget_refusal, spender_of, usage_tokens
from common.reservations import budget_allows, settle_tokens
from common.retrieval.passages import Passage
from workers.chapters import ChapterTask, rewrite_chapter
from workers.followups import SearchQuery, search_query, with_rewrite_usage
from workers.job_stream import JobStream
from workers.resources import WorkerResources

log = logging.getLogger(__name__)
T = TypeVar("T")
SELECTION_SOURCE = "selection"
GUARDRAIL_MODEL = "guardrail"
INDEX_POLL_S = 2.0
CANCELLED = AttemptOutcome.CANCELLED


@dataclass(frozen=True)
class _JobInput:
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
    task: str = "chat"  # or a chapter job: "personalize", "translate" (workers/chapters.py)
    language: str | None = None


def _claim(res: WorkerResources, job_id: uuid.UUID) -> _JobInput | None:
    return _record(res, lambda session: _claim_in(session, res, job_id))


def _claim_in(session: Session, res: WorkerResources, job_id: uuid.UUID) -> _JobInput | None:
    job = claim_chat_job(session, job_id, res.retry_policy.job_lease_s, res.worker_name)
    if job is None:
        return None
    chat = job.task == "chat"  # chapter jobs have no conversation
    history = conversation_history(session, job, res.settings.history_turns) if chat else []
    user = session.get(User, job.user_id)
    spender = (
        spender_of(res.settings, user.id, user.role, user.email, user.external_id)
        if user is not None
        else None
    )
    return _JobInput(
        job.id,
        job.message,
        job.selected_text,
        job.page_url,
        history,
        job.attempts,
        job.queued_at or job.created_at,
        job.metrics,
        get_profile(session, job.user_id),
        owner=job.user_id,
        spender=spender,
        task=job.task,
        language=job.language,
    )


def selection_passage(selected_text: str, page_url: str | None) -> Passage:
    """The reader's selection as the only passage to answer from."""
    return Passage(
        source=SELECTION_SOURCE,
        title="Selected text",
        heading="Selected text",
        url=page_url or "",
        text=selected_text,
        score=1.0,
    )


def selection_passages(
    selected_text: str, page_url: str | None, around: list[Passage]
) -> list[Passage]:
    """The selection as passage [1], then the book's passages around it for context."""
    return [selection_passage(selected_text, page_url), *around]


def retrieval_query(res: WorkerResources, job: _JobInput, stats: CallStats) -> SearchQuery:
    """The question, or a follow-up rewritten to stand alone (see workers/followups.py)."""
    vocabulary = res.retriever.vocabulary() if job.history else None
    if vocabulary is None:
        return SearchQuery(job.message)
    llm = res.llm
    model = res.settings.chat_model
    return search_query(job.id, job.message, job.history, vocabulary, stats, llm, model, res.redis)


def retrieve(
    res: WorkerResources, job: _JobInput, stats: CallStats
) -> tuple[list[Passage], SearchQuery]:
    """Passages to answer from: the selection and its surroundings, or the covering sections.

    The reader's page (`page_url`) and its chapter are preferred, never required.
    """
    if job.selected_text:
        # The selection is the subject; the book's passages nearest to it explain it.
        around: list[Passage] = []
        if res.index.current_collection() is not None:
            k = max(1, res.settings.retrieval_k - 1)
            prefer = res.retriever.pages().preferences(job.page_url)
            around = res.retriever.search.search(job.selected_text, k, prefer=prefer)
        passages = selection_passages(job.selected_text, job.page_url, around)
        return passages, SearchQuery(job.message)
    if res.index.current_collection() is None:
        raise WaitForIndex()
    query = retrieval_query(res, job, stats)
    if query.text != job.message:
        # Ids and lengths only: a reader's words must not outlive their deletion in a log.
        log.info(
            "chat job %s searches for a rewritten query of %d characters (%s)",
            job.id,
            len(query.text),
            query.rewritten_by,
        )
    retrieval = res.retriever.retrieve(
        query.text, k=res.settings.retrieval_k, page_url=job.page_url
    )
    if not retrieval.coverage.covered:
        log.info(
            "the book does not cover chat job %s's question (similarity %.2f, %d terms missing)",
            job.id,
            retrieval.coverage.top_similarity,
            len(retrieval.coverage.missing_terms),
        )
        return [], query
    return retrieval.passages, query


def generate(
    res: WorkerResources,
    job: _JobInput,
    passages: list[Passage],
    on_delta: DeltaSink,
    stats: CallStats,
    on_restart: Callable[[], None],
) -> Answer:
    """The answer: from the model, or a refusal without a model call when nothing was found."""
    if not passages:
        text = NOT_IN_SELECTION if job.selected_text else NOT_IN_BOOK
        on_delta(text)
        return Answer(text=text, model=GUARDRAIL_MODEL)
    request = AnswerRequest(
        job.message,
        passages,
        job.history,
        from_selection=bool(job.selected_text),
        page_url=job.page_url,
        job_id=str(job.id),
        profile=job.profile,
    )
    answer = res.answerer.generate(request, on_delta, stats, on_restart)
    if answer.profile_applied is None and job.profile is not None:
        # A model answerer applies what its prompt carried: the guidance from the profile.
        answer = replace(answer, profile_applied=profile_guidance(job.profile).applied)
    return answer


class HandBack(Exception):
    """The worker is shutting down: give the job back to the queue now."""


class AttemptLost(Exception):
    """The job was taken from this attempt (its lease ran out); stop without writing."""


class WaitForIndex(Exception):
    """No textbook index exists yet; the job waits for the first ingest."""

    delay = INDEX_POLL_S
    reason = "waiting for the textbook to be indexed"


def answer_chat_job(res: WorkerResources, job_id: uuid.UUID) -> None:
    """Run one chat job to completion; safe to call again for the same job.

    A job that must wait (model capacity, the first index) goes back to `queued` with a due
    time; a worker shutting down hands it back at once; the watchdog re-runs it if this
    worker dies. Database writes ride out short outages.
    """
    job = _claim(res, job_id)
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
        _run_attempt(res, job, stream)
    finally:
        res.leases.release(JobKind.CHAT, job_id)
        stream.drain(res.retry_policy.outage_bound_s)


def _record(res: WorkerResources, write: Callable[[Session], T]) -> T:
    return run_unit(res.sessions, write, res.retry_policy.outage_bound_s)


def _run_attempt(res: WorkerResources, job: _JobInput, stream: JobStream) -> None:
    stream.publish("status", {"status": JobStatus.IN_PROGRESS.value, "attempt": job.attempt})
    if job.attempt > 1:
        # Readers drop any partial text of an earlier attempt (see "Events" in the README).
        stream.publish("reset", {"attempt": job.attempt, "reason": "a new attempt starts over"})
    stats = CallStats()

    def on_delta(text: str) -> None:
        _check_still_ours(res, job)
        if stream.delta(text):  # the flush that sends a batch reads the cancel flag too
            raise GenerationStopped()

    def on_restart() -> None:
        stream.publish("reset", {"attempt": job.attempt, "reason": "the model call was retried"})

    try:
        if not budget_allows(res.redis, job.id, res.settings.llm_daily_token_budget):
            _settle(res, job, 0)
            _fail(res, job, stream, BUDGET_EXHAUSTED, budget_refusal())
            return
        if job.task == "chat":
            passages, query = retrieve(res, job, stats)
            _check_still_ours(res, job)
            answer = generate(res, job, passages, on_delta, stats, on_restart)
            answer = replace(answer, usage=with_rewrite_usage(answer.usage, query))
        else:
            passages = []
            chapter = ChapterTask(
                job.id, job.owner, job.task, job.message, job.language, job.attempt
            )
            answer = rewrite_chapter(res, chapter, on_delta, stats, on_restart)
    except GenerationStopped:
        log.info("chat job %s was cancelled while generating", job.id)
        # Cancelled before any model call: give the reservation back. A model stream cut off
        # mid-way reports no usage, so that job keeps its estimate.
        if stats.llm_calls == 0:
            _settle(res, job, 0)
        _record(res, lambda s: _end_cancelled(s, job))
        _count_finished(res)
        return
    except AttemptLost:
        log.warning("chat job %s was taken from attempt %d; stopping", job.id, job.attempt)
        return
    except HandBack:
        _release(res, job, stats, stream, AttemptOutcome.HANDED_BACK, 0.0, "the worker stopped")
        return
    except (RetryLater, WaitForIndex) as wait:
        _wait(res, job, stats, stream, wait)
        return
    except LLMError as exc:
        _settle(res, job, _spent(stats))
        _fail(res, job, stream, exc.code, exc.message, stats.merged_into(job.metrics))
        return
    except SoftTimeLimitExceeded:
        _settle(res, job, _spent(stats))
        _fail(res, job, stream, "timeout", "answering took too long")
        return
    except RedisError:
        # Only before a model call (the bookkeeping after one never raises): wait, don't fail.
        redis_away = RetryLater(res.retry_policy.requeue_delay_s, "Redis is unreachable")
        _wait(res, job, stats, stream, redis_away)
        return
    except Exception as exc:
        if not is_unavailable(exc):
            _settle(res, job, _spent(stats))
            message = "the answer could not be produced"
            _fail(res, job, stream, "internal_error", message, trace=trace_summary(exc))
        raise  # an unreachable database leaves the job to the watchdog
    # A chapter rewrite cites nothing: its brackets are the chapter's own text.
    chat = job.task == "chat"
    cited = resolve_citations(answer.text, passages) if chat else CitedAnswer(answer.text)
    _finish(res, job, stream, stats, answer, cited)


def _finish(
    res: WorkerResources,
    job: _JobInput,
    stream: JobStream,
    stats: CallStats,
    answer: Answer,
    cited: CitedAnswer,
) -> None:
    """Record the answer with what it cites, settle its tokens, then end the stream.

    The paid answer is written first; the settlement is best-effort, and until it lands the
    job's quotas count its estimate, which errs high.
    """
    metrics = stats.merged_into(job.metrics)
    recorded = _record(
        res,
        lambda s: (
            complete_chat_job(
                s,
                job.id,
                cited.text,
                cited.citations,
                answer.model,
                answer.usage,
                metrics,
                attempt=job.attempt,
                sources=cited.sources,
                incomplete_reason=answer.incomplete_reason,
            )
            and _store_profile_applied(s, job.id, answer.profile_applied)
        ),
    )
    # Spent whether or not the row is still this attempt's (a lost lease re-runs the job).
    _settle(res, job, max(usage_tokens(answer.usage), _spent(stats)))
    if not recorded:
        return
    _count_finished(res)
    if cited.text != answer.text:
        # Markers that named no passage were dropped: readers replace the streamed text.
        stream.publish("reset", {"attempt": job.attempt, "reason": "citations were checked"})
        stream.publish("delta", {"text": cited.text, "attempt": job.attempt})
    status = JobStatus.INCOMPLETE if answer.incomplete_reason else JobStatus.COMPLETED
    extra = {"model": answer.model, "usage": answer.usage}
    ending = ending_events(
        status.value, cited.citations, cited.sources, answer.incomplete_reason, **extra
    )
    for event, data in ending:
        stream.publish(event, data)


def _store_profile_applied(
    session: Session, job_id: uuid.UUID, applied: tuple[str, ...] | None
) -> bool:
    """Record which profile fields shaped the answer, in the completing transaction."""
    if applied is not None:
        values = {"profile_applied": list(applied)}
        session.execute(update(ChatJob).where(ChatJob.id == job_id).values(values))
    return True


def _end_cancelled(session: Session, job: _JobInput) -> None:
    # The row is normally cancelled already; if only the flag was set, the flag still wins.
    if not finish_attempt(session, JobKind.CHAT, job.id, job.attempt, JobStatus.CANCELLED):
        end_attempt(session, JobKind.CHAT, job.id, job.attempt, CANCELLED)


def _check_still_ours(res: WorkerResources, job: _JobInput) -> None:
    if res.leases.lost(JobKind.CHAT, job.id):
        raise AttemptLost()
    if res.shutting_down.is_set():
        raise HandBack()


def _wait(
    res: WorkerResources,
    job: _JobInput,
    stats: CallStats,
    stream: JobStream,
    wait: RetryLater | WaitForIndex,
) -> None:
    """Put the job back until it is due again, or fail it once it has waited too long.

    A claim that called no model only waited: it counts in `waits`, not `attempts`. A job
    waiting on an open circuit is not failed by the bound before the circuit has probed the
    provider since the job was queued: the probe's answer is the one the job waits for.
    """
    stats.requeues += 1
    waited = (utcnow() - job.queued_at).total_seconds()
    if waited + wait.delay > res.retry_policy.max_job_wait_s and _bound_applies(wait, job):
        code = "index_unavailable" if isinstance(wait, WaitForIndex) else "llm_unavailable"
        message = f"gave up after waiting {waited:.0f}s ({wait.reason})"
        _fail(res, job, stream, code, message, stats.merged_into(job.metrics))
        return
    due_in = min(wait.delay, res.retry_policy.max_countdown_s)
    outcome, only_waited = AttemptOutcome.REQUEUED, stats.llm_calls == 0
    _release(res, job, stats, stream, outcome, due_in, wait.reason, wait=only_waited)


def _bound_applies(wait: RetryLater | WaitForIndex, job: _JobInput) -> bool:
    if not isinstance(wait, RetryLater) or not wait.circuit_open:
        return True
    queued_at = job.queued_at
    if queued_at.tzinfo is None:  # SQLite hands back naive UTC
        queued_at = queued_at.replace(tzinfo=UTC)
    return wait.probed_at is not None and wait.probed_at > queued_at.timestamp()


def _release(
    res: WorkerResources,
    job: _JobInput,
    stats: CallStats,
    stream: JobStream,
    outcome: AttemptOutcome,
    due_in: float,
    reason: str,
    wait: bool = False,
) -> None:
    metrics = stats.merged_into(job.metrics)
    released = _record(
        res,
        lambda s: release_attempt(
            s, JobKind.CHAT, job.id, job.attempt, outcome, due_in, reason, wait, metrics=metrics
        ),
    )
    if released:
        status = {"status": JobStatus.QUEUED.value, "retry_in": round(due_in, 2), "reason": reason}
        stream.publish("status", status)


def _fail(
    res: WorkerResources,
    job: _JobInput,
    stream: JobStream,
    code: str,
    message: str,
    metrics: dict[str, Any] | None = None,
    trace: str | None = None,
) -> None:
    """Mark the attempt's job failed and tell its stream."""
    recorded = _record(
        res,
        lambda s: fail_chat_job(
            s, job.id, code, message, metrics, attempt=job.attempt, trace=trace
        ),
    )
    if recorded:
        _count_finished(res)
        stream.publish("error", {"code": code, "message": message})


def _count_finished(res: WorkerResources) -> None:
    """Count the job into the drain rate that admission control's Retry-After comes from."""
    try:
        record_finished(res.events.client)
    except RedisError:
        log.debug("could not count a finished chat job", exc_info=True)


def _spent(stats: CallStats) -> int:
    """Tokens this attempt's finished model calls reported."""
    return stats.prompt_tokens + stats.completion_tokens


def _settle(res: WorkerResources, job: _JobInput, tokens: int) -> None:
    """Replace the job's token reservation with what it spent (0 gives it back), once."""
    budget = res.settings.llm_daily_token_budget
    try:
        settle_tokens(res.redis, job.id, tokens, fallback=job.spender, budget=budget)
    except RedisError:
        # A lost settlement counts the estimate (or nothing) until midnight; never fail a job.
        log.warning("could not settle chat job %s's tokens", job.id, exc_info=True)
