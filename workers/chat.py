"""Answering one chat job: claim it, retrieve, generate with streamed deltas, record the outcome."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from common.chat_jobs import (
    claim_chat_job,
    complete_chat_job,
    conversation_history,
    fail_chat_job,
    release_chat_job,
)
from common.db import session_scope
from common.llm.base import Answer, AnswerRequest, DeltaSink, GenerationStopped
from common.llm.errors import LLMError, RetryLater
from common.llm.metrics import CallStats
from common.llm.prompts import NOT_IN_BOOK, NOT_IN_SELECTION
from common.models import JobStatus, utcnow
from common.retrieval.passages import Passage
from workers.resources import WorkerResources

log = logging.getLogger(__name__)
SELECTION_SOURCE = "selection"
GUARDRAIL_MODEL = "guardrail"


@dataclass(frozen=True)
class _JobInput:
    id: uuid.UUID
    message: str
    selected_text: str | None
    page_url: str | None
    history: list[tuple[str, str]]
    attempt: int
    created_at: datetime
    metrics: dict[str, Any] | None


def _claim(res: WorkerResources, job_id: uuid.UUID) -> _JobInput | None:
    with session_scope(res.sessions) as session:
        job = claim_chat_job(session, job_id, res.retry_policy.job_lease_s)
        if job is None:
            return None
        history = conversation_history(session, job, res.settings.history_turns)
        return _JobInput(
            job.id,
            job.message,
            job.selected_text,
            job.page_url,
            history,
            job.attempts,
            job.created_at,
            job.metrics,
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


def retrieval_query(job: _JobInput) -> str:
    """The question, plus the previous question so follow-ups keep their subject."""
    if job.history:
        return f"{job.history[-1][0]} {job.message}"
    return job.message


def retrieve(res: WorkerResources, job: _JobInput) -> list[Passage]:
    """Passages to answer from: the selection, or the book's sections if they cover it."""
    if job.selected_text:
        return [selection_passage(job.selected_text, job.page_url)]
    retrieval = res.retriever.retrieve(retrieval_query(job), k=res.settings.retrieval_k)
    if not retrieval.coverage.covered:
        log.info(
            "the book does not cover %r (similarity %.2f, missing %s)",
            job.message,
            retrieval.coverage.top_similarity,
            retrieval.coverage.missing_terms,
        )
        return []
    return retrieval.passages


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
    )
    return res.answerer.generate(request, on_delta, stats, on_restart)


def answer_chat_job(res: WorkerResources, job_id: uuid.UUID) -> None:
    """Run one chat job to completion; safe to call again for the same job.

    Raises RetryLater after putting the job back in the queue when the model cannot take the
    call soon; the task re-enqueues itself with that countdown.
    """
    job = _claim(res, job_id)
    if job is None:
        log.info("chat job %s is not runnable (finished, cancelled or leased)", job_id)
        return
    events = res.events
    events.publish(
        job_id, "status", {"status": JobStatus.IN_PROGRESS.value, "attempt": job.attempt}
    )
    stats = CallStats()

    def on_delta(text: str) -> None:
        if events.cancel_requested(job_id):
            raise GenerationStopped()
        events.publish(job_id, "delta", {"text": text})

    def on_restart() -> None:
        events.publish(job_id, "reset", {"reason": "the model call was retried"})

    try:
        passages = retrieve(res, job)
        answer = generate(res, job, passages, on_delta, stats, on_restart)
    except GenerationStopped:
        log.info("chat job %s was cancelled while generating", job_id)
        return
    except LLMError as exc:
        record_failure(res, job_id, exc.code, exc.message, stats.merged_into(job.metrics))
        return
    except RetryLater as exc:
        if _release_for_retry(res, job_id, job, stats, exc):
            raise
        return
    citations = [p.citation(n) for n, p in enumerate(passages, start=1)]
    metrics = stats.merged_into(job.metrics)
    with session_scope(res.sessions) as session:
        recorded = complete_chat_job(
            session, job_id, answer.text, citations, answer.model, answer.usage, metrics
        )
    if recorded:
        events.publish(job_id, "citations", {"citations": citations})
        events.publish(
            job_id,
            "done",
            {"status": JobStatus.COMPLETED.value, "model": answer.model, "usage": answer.usage},
        )


def _release_for_retry(
    res: WorkerResources, job_id: uuid.UUID, job: _JobInput, stats: CallStats, exc: RetryLater
) -> bool:
    """Put the job back in the queue, or fail it past its deadline; True if it should retry."""
    stats.requeues += 1
    metrics = stats.merged_into(job.metrics)
    waited = (utcnow() - job.created_at).total_seconds()
    if waited + exc.delay > res.retry_policy.max_job_wait_s:
        record_failure(
            res,
            job_id,
            "llm_unavailable",
            f"the language model stayed unavailable ({exc.reason})",
            metrics,
        )
        return False
    with session_scope(res.sessions) as session:
        released = release_chat_job(session, job_id, metrics)
    if released:
        res.events.publish(
            job_id,
            "status",
            {
                "status": JobStatus.QUEUED.value,
                "retry_in": round(exc.delay, 2),
                "reason": exc.reason,
            },
        )
    return released  # not released: cancelled meanwhile, nothing to retry


def record_failure(
    res: WorkerResources,
    job_id: uuid.UUID,
    code: str,
    message: str,
    metrics: dict[str, Any] | None = None,
) -> None:
    """Mark the running job failed and tell its stream."""
    with session_scope(res.sessions) as session:
        recorded = fail_chat_job(session, job_id, code, message, metrics)
    if recorded:
        res.events.publish(job_id, "error", {"code": code, "message": message})
