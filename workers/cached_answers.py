"""Answering a chat job from the answer cache, and remembering answers for it.

Right after the claim, before retrieval, the budget or the model's rate limiter: the question is
embedded (retrieval reuses the vector), its bucket's nearest stored questions are read, and the
first whose source job may still be served (common/jobs/cached_answers.py) and that no cheap
check tells apart (common/jobs/question_match.py) answers it. The job then completes with a copy
of that answer at zero model tokens and streams the events of any job, each marked `cached`.
A cache that fails (Redis away, a source unreadable) only means the model answers.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any

from redis import RedisError

from common.jobs.answer_labels import label_answer
from common.jobs.cached_answers import ZERO_USAGE, CachedAnswer, cache_source, complete_from_cache
from common.jobs.job_endings import ending_events
from common.jobs.question_match import veto
from common.llm.base import Answer
from common.llm.citations import CitedAnswer
from common.platform.models import AnswerLabel, JobStatus
from workers.answer_cache import BucketKey, answer_model, bucket_key, index_version
from workers.attempts import Attempt
from workers.outcomes import count_finished, settle

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheProbe:
    """A job's bucket in the cache and its question's vector."""

    key: BucketKey
    vector: list[float]


def cache_probe(attempt: Attempt) -> CacheProbe | None:
    """The job's bucket and vector, when the cache may answer it: a first-turn chat question.

    A follow-up is never looked up nor stored: its answer was written with the conversation's
    earlier turns in the prompt, which are that reader's alone.
    """
    res, job = attempt.res, attempt.job
    settings = res.settings
    if not settings.answer_cache_enabled or job.task != "chat" or job.history:
        return None
    version = index_version(res.redis)
    collection = res.index.current_collection()
    model = answer_model(settings)
    embedder = res.embedder
    key = bucket_key(
        version, collection, job.selected_text, job.page_url, job.profile, model, embedder.name
    )
    return CacheProbe(key, embedder.embed_query(job.message))


def serve_cached(attempt: Attempt, probe: CacheProbe) -> bool:
    """Answer the job from the cache; False when nothing stored may answer it."""
    res, job = attempt.res, attempt.job
    bound = res.settings.answer_cache_min_similarity
    for source_id, similarity in res.answer_cache.nearest(probe.key, probe.vector, bound):
        if source_id == job.id:
            continue
        source = attempt.record(partial(cache_source, job_id=source_id))
        if source is None:
            _forget(attempt, probe.key, source_id)
            continue
        reason = veto(job.message, source.message)
        if reason is not None:
            log.info("chat job %s: cached %s is near but differs (%s)", job.id, source_id, reason)
            continue
        _serve(attempt, source, similarity)
        return True
    return False


def _serve(attempt: Attempt, source: CachedAnswer, similarity: float) -> None:
    job, number = attempt.job, attempt.number
    marker: dict[str, Any] = {"cached": True, "cached_from": str(source.job_id)}
    metrics = {**attempt.metrics(), **marker, "cache_similarity": round(similarity, 4)}
    attempt.publish("status", {"status": JobStatus.IN_PROGRESS.value, "attempt": number, **marker})
    recorded = attempt.record(
        lambda s: complete_from_cache(s, job.id, number, source, metrics),
    )
    settle(attempt, 0)  # the reservation is given back: no model call was made
    if not recorded:
        return
    count_finished(attempt.res)
    log.info("chat job %s answered from cached %s (%.3f)", job.id, source.job_id, similarity)
    attempt.publish("delta", {"text": source.answer, "attempt": number, **marker})
    ending = ending_events(
        JobStatus.COMPLETED.value,
        source.citations,
        source.sources,
        model=source.model,
        usage=dict(ZERO_USAGE),
        **marker,
    )
    for event, data in ending:
        attempt.publish(event, data)


def remember(attempt: Attempt, probe: CacheProbe, answer: Answer, cited: CitedAnswer) -> None:
    """Store a recorded answer that others may be served: whole, and labelled `answered`."""
    if answer.incomplete_reason is not None:
        return
    label = label_answer(attempt.coverage, cited.text, len(cited.citations))
    if label is not AnswerLabel.ANSWERED:
        return
    try:
        attempt.res.answer_cache.store(probe.key, attempt.job.id, probe.vector)
    except RedisError:
        log.warning("could not store chat job %s in the answer cache", attempt.job.id)


def _forget(attempt: Attempt, key: BucketKey, source_id: uuid.UUID) -> None:
    try:
        attempt.res.answer_cache.forget(key, source_id)
    except RedisError:
        log.debug("could not drop cached job %s", source_id, exc_info=True)
