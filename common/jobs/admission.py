"""Admission control: refuse new chat jobs while the backlog is past what workers can finish.

The backlog is read from the rows (queued jobs, and the oldest one's wait) at most once per
`ADMISSION_CACHE_SECONDS` per process, so the check costs a submit nothing most of the time.
The drain rate that sets `Retry-After` comes from a Redis counter of finished chat jobs that
workers bump (10 s buckets, the last minute summed), read only when refusing.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import redis
from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from common.platform.errors import ServiceBusy
from common.platform.models import ChatJob, JobStatus, utcnow
from common.platform.settings import Settings

_BUCKET_S = 10
_WINDOW_BUCKETS = 6  # one minute
_NO_DRAIN_RETRY_S = 60  # nothing finished for a minute: come back in a minute
MAX_RETRY_AFTER_S = 600


class Overloaded(ServiceBusy):
    """503: the chat backlog is past its bounds; `retry_after` says when to come back."""

    code, title = "overloaded", "Too many queued questions"


@dataclass(frozen=True)
class Backlog:
    """Queued chat jobs and how long the oldest has waited."""

    queued: int
    oldest_wait_s: float


@dataclass(frozen=True)
class Refusal:
    """What an overloaded submit is told."""

    detail: str
    retry_after: int
    extensions: dict[str, Any]


def _bucket_key(bucket: int) -> str:
    return f"bookchat:chat:finished:{bucket}"


def record_finished(client: redis.Redis, now: float | None = None) -> None:
    """Count one chat job finished (completed, failed or cancelled) in the drain-rate window."""
    key = _bucket_key(int((now or time.time()) // _BUCKET_S))
    pipe = client.pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, _BUCKET_S * (_WINDOW_BUCKETS + 1))
    pipe.execute()


def drain_rate(client: redis.Redis, now: float | None = None) -> float:
    """Chat jobs finished per second over the last minute (the current bucket included)."""
    current = int((now or time.time()) // _BUCKET_S)
    keys = [_bucket_key(current - n) for n in range(_WINDOW_BUCKETS)]
    counts: Any = client.mget(keys)
    return sum(int(count or 0) for count in counts) / (_BUCKET_S * _WINDOW_BUCKETS)


def read_backlog(session: Session) -> Backlog:
    """Queued chat jobs, and how long the oldest runnable one has waited for a worker.

    Every queued job counts toward the depth; the wait runs from when a job became due, so a
    job deliberately waiting for model capacity (a due time ahead) does not age the queue.
    """
    now = utcnow()
    ready_since = func.coalesce(ChatJob.due_at, ChatJob.queued_at, ChatJob.created_at)
    due = or_(ChatJob.due_at.is_(None), ChatJob.due_at <= now)
    count, oldest = session.execute(
        select(func.count(), func.min(case((due, ready_since)))).where(
            ChatJob.status == JobStatus.QUEUED.value
        )
    ).one()
    if oldest is None:
        return Backlog(int(count), 0.0)
    if oldest.tzinfo is None:  # as SQLite may return it
        oldest = oldest.replace(tzinfo=UTC)
    return Backlog(int(count), max(0.0, (now - oldest).total_seconds()))


def retry_after_seconds(backlog: Backlog, rate: float, max_queued: int, max_wait_s: float) -> int:
    """Seconds until the backlog is back within bounds at the current drain rate.

    The bound in jobs is the smaller of `max_queued` and what drains within `max_wait_s`.
    """
    if rate <= 0:
        return _NO_DRAIN_RETRY_S
    bound = min(max_queued, rate * max_wait_s)
    excess = max(1.0, backlog.queued - bound)
    return max(1, min(MAX_RETRY_AFTER_S, math.ceil(excess / rate)))


class Admission:
    """One process's admission decision, re-read at most every `cache_seconds`."""

    def __init__(self, settings: Settings) -> None:
        self.max_queued = settings.admission_max_queued
        self.max_wait_s = settings.admission_max_wait_seconds
        self.cache_s = settings.admission_cache_seconds
        self._lock = threading.Lock()
        self._checked_at = -math.inf
        self._refusal: Refusal | None = None

    def check(self, session: Session, client: redis.Redis) -> None:
        """Raise Overloaded while the backlog is past a bound (decided at most once a second)."""
        now = time.monotonic()
        if now - self._checked_at >= self.cache_s:
            with self._lock:
                if now - self._checked_at >= self.cache_s:
                    self._refusal = self._decide(session, client)
                    self._checked_at = time.monotonic()
        refusal = self._refusal
        if refusal is not None:
            # A fresh exception each time: re-raising one instance would grow its traceback.
            raise Overloaded(refusal.detail, refusal.retry_after, **refusal.extensions)

    def _decide(self, session: Session, client: redis.Redis) -> Refusal | None:
        backlog = read_backlog(session)
        too_deep = backlog.queued >= self.max_queued
        too_old = backlog.oldest_wait_s > self.max_wait_s
        if not (too_deep or too_old):
            return None
        try:
            rate = drain_rate(client)
        except redis.RedisError:
            rate = 0.0  # the refusal stands; only its Retry-After is a guess
        retry_after = retry_after_seconds(backlog, rate, self.max_queued, self.max_wait_s)
        reason = (
            f"{backlog.queued} questions are queued (limit {self.max_queued})"
            if too_deep
            else f"the oldest queued question has waited {backlog.oldest_wait_s:.0f}s "
            f"(limit {self.max_wait_s:.0f}s)"
        )
        extensions = {
            "queued": backlog.queued,
            "oldest_wait_seconds": round(backlog.oldest_wait_s, 1),
        }
        return Refusal(f"{reason}; try again in {retry_after}s", retry_after, extensions)
