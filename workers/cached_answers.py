"""Answering a chat job from the answer cache, and remembering answers for it.

Right after the claim, before retrieval, the budget or the model's rate limiter: the question is
embedded (retrieval reuses the vector), its bucket's nearest stored questions are read, and the
first whose source job may still be served (common/jobs/cached_answers.py) and that no cheap
check tells apart (common/jobs/question_match.py) answers it. The job then completes with a copy
of that answer at zero model tokens and streams the events of any job, each marked `cached`.
A twin that arrives while the same question is being answered waits for that answer (it goes
back to the queue for a moment, as a job waiting for the rate limiter does) instead of calling
the model too. A cache that fails (Redis away, a source unreadable) only means the model
answers.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC
from functools import partial
from typing import Any

from redis import RedisError
from redis.exceptions import LockError

from common.jobs.answer_labels import label_answer
from common.jobs.cached_answers import (
    ZERO_USAGE,
    CachedAnswer,
    Twin,
    cache_sources,
    complete_from_cache,
    twins_of,
)
from common.jobs.job_endings import ending_events
from common.jobs.question_match import veto
from common.jobs.repeat_lane import repeat_hint_key, write_repeat_hint
from common.llm.base import Answer
from common.llm.citations import CitedAnswer
from common.platform.models import JobStatus, utcnow
from workers.answer_cache import BucketKey, answer_model, bucket_key, index_version
from workers.attempts import Attempt
from workers.outcomes import count_finished, settle

log = logging.getLogger(__name__)
# A job whose twin is being answered looks again after this long (or once the twin is due).
TWIN_POLL_S = 2.0
TWIN_MAX_WAIT_S = 30.0


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
    near = [
        (source_id, similarity)
        for source_id, similarity in res.answer_cache.nearest(probe.key, probe.vector, bound)
        if source_id != job.id
    ]
    if not near:
        return False
    labels = res.settings.answer_cache_labels
    # One read for all candidates: the veto below needs each one's text, which the row holds.
    sources = attempt.record(
        partial(cache_sources, job_ids=[source_id for source_id, _ in near], labels=labels)
    )
    for source_id, similarity in near:
        source = sources.get(source_id)
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


def wait_for_twin(attempt: Attempt, probe: CacheProbe) -> float | None:
    """Seconds to wait for a twin being answered now, or None when this job answers.

    A job that answers is marked pending, so its own twins wait for it, unless a twin was
    answered without an answer worth caching (refused, uncertain, cut off): then each asks for
    itself. A twin that failed or was cancelled is forgotten: this job answers in its place.
    """
    res, job = attempt.res, attempt.job
    if res.answer_cache.is_pending(probe.key, job.id):
        return None  # back from a wait for the rate limiter: its twins wait for it, not it
    try:
        with res.answer_cache.pending_turn(probe.key):
            return _find_twin_or_mark(attempt, probe)
    except LockError:  # the turn did not come within its wait: answering is always safe
        log.warning("no turn in the answer cache's bucket for job %s; it answers", job.id)
        return None


def _find_twin_or_mark(attempt: Attempt, probe: CacheProbe) -> float | None:
    res, job = attempt.res, attempt.job
    bound = res.settings.answer_cache_min_similarity
    ended = False
    pending = res.answer_cache.nearest_pending(probe.key, probe.vector, bound)
    near = [twin_id for twin_id, _ in pending if twin_id != job.id]
    # One read for all of them: a question asked often has many near twins marked pending.
    twins = attempt.record(partial(twins_of, job_ids=near)) if near else {}
    for twin_id in near:
        twin = twins.get(twin_id)
        if twin is None or not (twin.active or twin.answered):
            # Gone, failed or cancelled: it says nothing about the question; this job takes over.
            res.answer_cache.clear_pending(probe.key, twin_id)
            continue
        if veto(job.message, twin.message) is not None:
            continue
        if twin.answered:
            ended = True  # answered, yet not stored: each asks for itself
            continue
        return _twin_delay(twin)
    if not ended:
        res.answer_cache.mark_pending(probe.key, job.id, probe.vector)
    return None


def _twin_delay(twin: Twin) -> float:
    """Until the twin is due again and has had time to answer, or a poll's interval."""
    if twin.due_at is None:
        return TWIN_POLL_S
    due_at = twin.due_at if twin.due_at.tzinfo else twin.due_at.replace(tzinfo=UTC)
    due_in = (due_at - utcnow()).total_seconds()
    return min(max(TWIN_POLL_S, due_in + TWIN_POLL_S), TWIN_MAX_WAIT_S)


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
    if label.value not in attempt.res.settings.answer_cache_labels:
        return
    job, res = attempt.job, attempt.res
    try:
        cache = res.answer_cache
        cache.store(probe.key, job.id, probe.vector)
        cache.clear_pending(probe.key, job.id)
        # Its repeats skip the chat queue's backlog from now on (common/jobs/repeat_lane.py).
        hint = repeat_hint_key(job.message, job.selected_text, job.page_url)
        ttl = res.settings.answer_cache_ttl_seconds
        write_repeat_hint(res.redis, hint, probe.key.index_version, ttl)
    except RedisError:
        log.warning("could not store chat job %s in the answer cache", attempt.job.id)


def _forget(attempt: Attempt, key: BucketKey, source_id: uuid.UUID) -> None:
    try:
        attempt.res.answer_cache.forget(key, source_id)
    except RedisError:
        log.debug("could not drop cached job %s", source_id, exc_info=True)
