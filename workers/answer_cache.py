"""The answer cache's store: question vectors in Redis, one list per exact key, scanned by numpy.

An entry is (source job id, the question's float32 vector) appended to the list of its bucket:
the book's index version, the selection, the reader's profile and the model, hashed together.
Only a question in the same bucket can match. Every worker process shares the store and keeps a
copy of the buckets it reads, fetching only the entries appended since (workers/answer_mirror.py),
so a lookup costs one small round trip and a matrix product however full the bucket is. A new
index version starts new buckets and the old ones expire (ANSWER_CACHE_TTL_SECONDS). A full
bucket (ANSWER_CACHE_MAX_ENTRIES) takes no more entries until it expires.

While a question is being answered, its job is also in the bucket's pending hash: a twin that
arrives meanwhile waits for that answer instead of calling the model too (single flight).

The index version is a counter an ingest bumps when it starts and when it ends (any mode, any
outcome): an answer computed while an ingest ran is stored under the version it started with,
which the ingest's end leaves behind.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis
from redis.lock import Lock

from common.accounts.profiles import ReaderProfileIn, profile_hash
from common.jobs.repeat_lane import INDEX_VERSION_KEY, selection_hash
from common.platform.settings import Settings
from workers.answer_mirror import BucketMirror, added, dropped

log = logging.getLogger(__name__)
_PREFIX = "bookchat:answer-cache:"
_PENDING = ":pending"
# A bucket's vectors are read in one round trip; more than this many candidates are never tried.
MAX_CANDIDATES = 3
# Questions being answered: kept at most this long after the last one was added (each entry's
# job row says whether it still runs).
PENDING_TTL_S = 900


def index_version(client: redis.Redis) -> int:
    """The book's index version: bumped by every ingest, 0 before the first."""
    value: Any = client.get(INDEX_VERSION_KEY)
    return int(value or 0)


def bump_index_version(client: redis.Redis) -> None:
    """Start a new index version: every cached answer of the old one stops matching."""
    client.incr(INDEX_VERSION_KEY)


def answer_model(settings: Settings) -> str:
    """The model that answers chat jobs under these settings (the offline answerer's name)."""
    return settings.chat_model if settings.uses_openai else "extractive"


@dataclass(frozen=True)
class BucketKey:
    """The exact parts of an answer's key; the question's meaning is compared within them."""

    index_version: int
    collection: str
    selection: str
    profile: str
    model: str
    embedder: str

    def redis_key(self) -> str:
        """The bucket's Redis key: a hash of every part."""
        parts = (
            str(self.index_version),
            self.collection,
            self.selection,
            self.profile,
            self.model,
            self.embedder,
        )
        return _PREFIX + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def bucket_key(
    version: int,
    collection: str | None,
    selected_text: str | None,
    page_url: str | None,
    profile: ReaderProfileIn | None,
    model: str,
    embedder: str,
) -> BucketKey:
    """The bucket of a question with these inputs."""
    return BucketKey(
        version,
        collection or "",
        selection_hash(selected_text, page_url),
        profile_hash(profile),
        model,
        embedder,
    )


class AnswerCache:
    """Finds the stored questions nearest to a new one, and stores answered ones."""

    def __init__(self, client: redis.Redis, ttl_seconds: int, max_entries: int) -> None:
        self.client = client
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.mirror = BucketMirror(client)

    def nearest(
        self, key: BucketKey, vector: list[float], min_similarity: float
    ) -> list[tuple[uuid.UUID, float]]:
        """Stored questions at least `min_similarity` from `vector`, nearest first."""
        return self.mirror.nearest(key.redis_key(), vector, min_similarity, MAX_CANDIDATES)

    def nearest_pending(
        self, key: BucketKey, vector: list[float], min_similarity: float
    ) -> list[tuple[uuid.UUID, float]]:
        """Questions being answered now at least `min_similarity` from `vector`."""
        return self._nearest(key.redis_key() + _PENDING, vector, min_similarity)

    def mark_pending(self, key: BucketKey, job_id: uuid.UUID, vector: list[float]) -> None:
        """Say that this question is being answered: its twins wait for it (single flight)."""
        name = key.redis_key() + _PENDING
        if not self._full(name):
            self._put(name, job_id, vector, PENDING_TTL_S)

    def pending_turn(self, key: BucketKey) -> Lock:
        """A bucket's turn to look for a twin and mark itself pending, one job at a time."""
        # Without it two twins claimed at once each find no other pending and both answer.
        return self.client.lock(key.redis_key() + ":turn", timeout=10, blocking_timeout=5)

    def is_pending(self, key: BucketKey, job_id: uuid.UUID) -> bool:
        """Whether this job was marked as answering its question."""
        return bool(self.client.hexists(key.redis_key() + _PENDING, str(job_id)))

    def clear_pending(self, key: BucketKey, job_id: uuid.UUID) -> None:
        """The question is no longer being answered."""
        self.client.hdel(key.redis_key() + _PENDING, str(job_id))

    def _nearest(
        self, name: str, vector: list[float], min_similarity: float
    ) -> list[tuple[uuid.UUID, float]]:
        entries: Any = self.client.hgetall(name)
        if not entries:
            return []
        ids = list(entries)
        packed = b"".join(base64.b64decode(entries[i]) for i in ids)
        matrix = np.frombuffer(packed, dtype=np.float32)
        matrix = matrix.reshape(len(ids), -1)
        query = np.asarray(vector, dtype=np.float32)
        if matrix.shape[1] != query.shape[0]:
            return []
        scores = matrix @ query
        order = np.argsort(-scores)[:MAX_CANDIDATES]
        return [(uuid.UUID(ids[i]), float(scores[i])) for i in order if scores[i] >= min_similarity]

    def store(self, key: BucketKey, job_id: uuid.UUID, vector: list[float]) -> None:
        """Remember an answered question (a full bucket takes no more until it expires)."""
        entry = added(job_id, vector)
        self.mirror.append(key.redis_key(), entry, self.ttl_seconds, self.max_entries)

    def _full(self, name: str) -> bool:
        size: Any = self.client.hlen(name)
        return int(size or 0) >= self.max_entries

    def _put(self, name: str, job_id: uuid.UUID, vector: list[float], ttl: int) -> None:
        # Base64: the shared client decodes replies as text.
        packed = base64.b64encode(np.asarray(vector, dtype=np.float32).tobytes()).decode()
        pipe = self.client.pipeline()
        pipe.hset(name, str(job_id), packed)
        pipe.expire(name, ttl)
        pipe.execute()

    def forget(self, key: BucketKey, job_id: uuid.UUID) -> None:
        """Drop an entry whose source may no longer be served (in every process's copy)."""
        self.mirror.append(key.redis_key(), dropped(job_id), self.ttl_seconds)
