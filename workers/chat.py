"""Answering one chat job: claim it, retrieve, generate with streamed deltas, record the outcome."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace

from celery.exceptions import SoftTimeLimitExceeded
from redis import RedisError

from common.db import is_unavailable
from common.lifecycle import trace_summary
from common.llm.base import GenerationStopped
from common.llm.citations import CitedAnswer, resolve_citations
from common.llm.errors import LLMError, RetryLater
from common.llm.metrics import CallStats
from common.models import AttemptOutcome, JobKind, JobStatus
from common.quotas import BUDGET_EXHAUSTED, budget_refusal
from common.reservations import budget_allows
from workers.attempts import (
    AttemptLost,
    HandBack,
    JobInput,
    WaitForIndex,
    check_still_ours,
    claim,
    record,
)
from workers.chapter_runner import ChapterTask, rewrite_chapter
from workers.chat_runner import generate, retrieve
from workers.followups import with_rewrite_usage
from workers.job_stream import JobStream
from workers.outcomes import (
    count_finished,
    end_cancelled,
    fail,
    finish,
    release,
    requeue,
    settle,
    spent,
)
from workers.resources import WorkerResources

log = logging.getLogger(__name__)


def answer_chat_job(res: WorkerResources, job_id: uuid.UUID) -> None:
    """Run one chat job to completion; safe to call again for the same job.

    A job that must wait (model capacity, the first index) goes back to `queued` with a due
    time; a worker shutting down hands it back at once; the watchdog re-runs it if this
    worker dies. Database writes ride out short outages.
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
        _run_attempt(res, job, stream)
    finally:
        res.leases.release(JobKind.CHAT, job_id)
        stream.drain(res.retry_policy.outage_bound_s)


def _run_attempt(res: WorkerResources, job: JobInput, stream: JobStream) -> None:
    stream.publish("status", {"status": JobStatus.IN_PROGRESS.value, "attempt": job.attempt})
    if job.attempt > 1:
        # Readers drop any partial text of an earlier attempt (see "Events" in the README).
        stream.publish("reset", {"attempt": job.attempt, "reason": "a new attempt starts over"})
    stats = CallStats()

    def on_delta(text: str) -> None:
        check_still_ours(res, job)
        if stream.delta(text):  # the flush that sends a batch reads the cancel flag too
            raise GenerationStopped()

    def on_restart() -> None:
        stream.publish("reset", {"attempt": job.attempt, "reason": "the model call was retried"})

    try:
        if not budget_allows(res.redis, job.id, res.settings.llm_daily_token_budget):
            settle(res, job, 0)
            fail(res, job, stream, BUDGET_EXHAUSTED, budget_refusal())
            return
        if job.task == "chat":
            passages, query = retrieve(res, job, stats)
            check_still_ours(res, job)
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
            settle(res, job, 0)
        record(res, lambda s: end_cancelled(s, job))
        count_finished(res)
        return
    except AttemptLost:
        log.warning("chat job %s was taken from attempt %d; stopping", job.id, job.attempt)
        return
    except HandBack:
        release(res, job, stats, stream, AttemptOutcome.HANDED_BACK, 0.0, "the worker stopped")
        return
    except (RetryLater, WaitForIndex) as waiting:
        requeue(res, job, stats, stream, waiting)
        return
    except LLMError as exc:
        settle(res, job, spent(stats))
        fail(res, job, stream, exc.code, exc.message, stats.merged_into(job.metrics))
        return
    except SoftTimeLimitExceeded:
        settle(res, job, spent(stats))
        fail(res, job, stream, "timeout", "answering took too long")
        return
    except RedisError:
        # Only before a model call (the bookkeeping after one never raises): wait, don't fail.
        redis_away = RetryLater(res.retry_policy.requeue_delay_s, "Redis is unreachable")
        requeue(res, job, stats, stream, redis_away)
        return
    except Exception as exc:
        if not is_unavailable(exc):
            settle(res, job, spent(stats))
            message = "the answer could not be produced"
            fail(res, job, stream, "internal_error", message, trace=trace_summary(exc))
        raise  # an unreachable database leaves the job to the watchdog
    # A chapter rewrite cites nothing: its brackets are the chapter's own text.
    chat = job.task == "chat"
    cited = resolve_citations(answer.text, passages) if chat else CitedAnswer(answer.text)
    finish(res, job, stream, stats, answer, cited)
