"""The database side of the answer cache: which answers may be served again, and serving one.

A source must be a first-turn chat answer that completed whole, labelled `answered` (by default:
ANSWER_CACHE_LABELS may add `uncertain` or `refused`; a weakly supported answer is not repeated
to a whole class unless the operator says so), never itself a copy, and never rated down,
neither by its reader nor by a reader who got a copy of it. The Redis side
(workers/answer_cache.py) only finds candidates; this decides.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Exists, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from common.jobs.chat_jobs import complete_chat_job
from common.platform.models import (
    AnswerFeedback,
    AnswerLabel,
    ChatJob,
    FeedbackRating,
    JobStatus,
)

ZERO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
# The labels whose answers are served again unless ANSWER_CACHE_LABELS says otherwise.
DEFAULT_LABELS = (AnswerLabel.ANSWERED.value,)


@dataclass(frozen=True)
class CachedAnswer:
    """What a copy takes from its source job."""

    job_id: uuid.UUID
    message: str
    answer: str
    citations: list[Any]
    sources: list[Any]
    model: str
    label: str | None
    top_similarity: float | None
    profile_applied: list[Any] | None


def is_cacheable(
    status: str,
    label: str | None,
    task: str,
    cached_from: uuid.UUID | None,
    labels: Collection[str] = DEFAULT_LABELS,
) -> bool:
    """Whether a finished job's answer may be served to others who ask the same."""
    return (
        task == "chat"
        and status == JobStatus.COMPLETED.value
        and label in labels
        and cached_from is None
    )


def _rated_down() -> Exists:
    # A reader rated the job's answer, or a copy of it, down. One level below the outer job,
    # so that it correlates (a nested IN would read every job's copies).
    rated = aliased(ChatJob)
    return exists().where(
        AnswerFeedback.rating == FeedbackRating.DOWN.value,
        AnswerFeedback.job_id == rated.id,
        or_(rated.id == ChatJob.id, rated.cached_from_job_id == ChatJob.id),
    )


def cache_sources(
    session: Session, job_ids: list[uuid.UUID], labels: Collection[str] = DEFAULT_LABELS
) -> dict[uuid.UUID, CachedAnswer]:
    """The answers of these jobs that may still be served again, in one query; a job gone, not
    cacheable or rated down is left out."""
    if not job_ids:
        return {}
    rows = session.execute(
        select(ChatJob, _rated_down().correlate(ChatJob)).where(ChatJob.id.in_(job_ids))
    )
    found = {}
    for job, down in rows:
        if down or not is_cacheable(
            job.status, job.label, job.task, job.cached_from_job_id, labels
        ):
            continue
        if job.answer is None or job.model is None:
            continue
        found[job.id] = CachedAnswer(
            job.id,
            job.message,
            job.answer,
            list(job.citations or []),
            list(job.sources or []),
            job.model,
            job.label,
            job.top_similarity,
            job.profile_applied,
        )
    return found


@dataclass(frozen=True)
class Twin:
    """A job asking (maybe) the same question that is being answered now."""

    message: str
    active: bool  # queued or running: its answer may still come
    answered: bool  # finished with an answer (completed or incomplete), cacheable or not
    due_at: datetime | None  # when a queued one runs again


def twins_of(session: Session, job_ids: list[uuid.UUID]) -> dict[uuid.UUID, Twin]:
    """What a waiting job needs to know of its twins, in one query; a twin that is gone is
    left out."""
    if not job_ids:
        return {}
    rows = session.execute(
        select(ChatJob.id, ChatJob.message, ChatJob.status, ChatJob.due_at).where(
            ChatJob.id.in_(job_ids)
        )
    )
    return {row.id: _twin(row.message, row.status, row.due_at) for row in rows}


def _twin(message: str, status: str, due_at: datetime | None) -> Twin:
    active = status in (JobStatus.QUEUED.value, JobStatus.IN_PROGRESS.value)
    answered = status in (JobStatus.COMPLETED.value, JobStatus.INCOMPLETE.value)
    return Twin(message, active, answered, due_at)


def complete_from_cache(
    session: Session,
    job_id: uuid.UUID,
    attempt: int,
    source: CachedAnswer,
    metrics: dict[str, Any],
) -> bool:
    """Finish the attempt's job with a copy of the source's answer, at zero model tokens."""
    done = complete_chat_job(
        session,
        job_id,
        source.answer,
        source.citations,
        source.model,
        dict(ZERO_USAGE),
        metrics,
        attempt=attempt,
        sources=source.sources,
    )
    if done:
        copied = {
            "cached_from_job_id": source.job_id,
            "label": source.label,
            "top_similarity": source.top_similarity,
            "profile_applied": source.profile_applied,
        }
        session.execute(update(ChatJob).where(ChatJob.id == job_id).values(copied))
    return done
