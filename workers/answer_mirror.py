"""A worker process's copy of the answer cache's buckets, synced from append-only Redis lists.

A bucket is a Redis list that only grows: `<job id> <base64 float32 vector>` for a stored
answer, `-<job id>` for one dropped (its source may no longer be served). Each process keeps
the vectors of the buckets it has read as one numpy matrix and, per lookup, reads only the
entries appended since its offset (one round trip, usually empty), instead of the whole bucket.

A bucket that expired and was made again must not be read from an old offset: a store sets the
bucket's epoch (a random token) beside the list, in the same transaction and with the same TTL,
and a copy whose epoch differs is read again from the start.

A dropped entry everyone else still holds is harmless: every hit is checked against its source
row at serve time (completed, labelled, not rated down) before it is served.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis

# Buckets one process keeps (at most 1,000 vectors of 384 floats each: 1.5 MB a bucket).
MIRRORED_BUCKETS = 32
LOG = ":log"
EPOCH = ":epoch"


@dataclass
class _Copy:
    """One bucket as this process has read it."""

    epoch: str | None = None
    offset: int = 0
    ids: list[str] = field(default_factory=list)
    matrix: np.ndarray | None = None  # the stored rows of `_buffer`
    _buffer: np.ndarray | None = None
    dropped: set[str] = field(default_factory=set)

    def apply(self, entries: list[str]) -> None:
        """Add the entries read after the offset."""
        rows: list[np.ndarray] = []
        for entry in entries:
            if entry.startswith("-"):
                self.dropped.add(entry[1:])
                continue
            job_id, _, packed = entry.partition(" ")
            row = np.frombuffer(base64.b64decode(packed), dtype=np.float32)
            width = self.matrix.shape[1] if self.matrix is not None else len(row)
            if len(row) != width or (rows and len(row) != len(rows[0])):
                continue  # another embedder's vector: it never compares
            self.ids.append(job_id)
            rows.append(row)
        if rows:
            self._extend(np.vstack(rows))
        self.offset += len(entries)

    def _extend(self, new: np.ndarray) -> None:
        """Append rows to the matrix, doubling its buffer when full (no copy per entry)."""
        used = 0 if self.matrix is None else self.matrix.shape[0]
        if self._buffer is None or used + len(new) > self._buffer.shape[0]:
            capacity = max(64, 2 * (used + len(new)))
            buffer = np.empty((capacity, new.shape[1]), dtype=np.float32)
            if self.matrix is not None:
                buffer[:used] = self.matrix
            self._buffer = buffer
        self._buffer[used : used + len(new)] = new
        self.matrix = self._buffer[: used + len(new)]


class BucketMirror:
    """The buckets this process has read, each synced by reading only what was appended."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._copies: OrderedDict[str, _Copy] = OrderedDict()
        self._lock = threading.Lock()

    def nearest(
        self, name: str, vector: list[float], min_similarity: float, limit: int
    ) -> list[tuple[uuid.UUID, float]]:
        """Entries of bucket `name` at least `min_similarity` from `vector`, nearest first."""
        with self._lock:
            copy = self._synced(name)
            matrix = copy.matrix
            if matrix is None:
                return []
            query = np.asarray(vector, dtype=np.float32)
            if matrix.shape[1] != query.shape[0]:
                return []
            scores = matrix @ query
            near = np.flatnonzero(scores >= min_similarity)  # few: only these are sorted
            found: list[tuple[uuid.UUID, float]] = []
            for i in near[np.argsort(-scores[near])]:
                if len(found) >= limit:
                    break
                if copy.ids[i] not in copy.dropped:
                    found.append((uuid.UUID(copy.ids[i]), float(scores[i])))
            return found

    def _synced(self, name: str) -> _Copy:
        copy = self._copies.pop(name, None) or _Copy()
        self._copies[name] = copy  # most recently used last
        while len(self._copies) > MIRRORED_BUCKETS:
            self._copies.popitem(last=False)
        epoch, entries = self._read(name, copy.offset)
        if epoch != copy.epoch:
            copy = _Copy(epoch=epoch)  # new, or expired and made again: read it whole
            self._copies[name] = copy
            if epoch is not None:
                _, entries = self._read(name, 0)
            else:
                entries = []
        copy.apply(entries)
        return copy

    def _read(self, name: str, offset: int) -> tuple[str | None, list[str]]:
        pipe = self.client.pipeline(transaction=False)
        pipe.get(name + EPOCH)
        pipe.lrange(name + LOG, offset, -1)
        epoch, entries = pipe.execute()
        return _text(epoch), [_text(e) or "" for e in entries]

    def append(self, name: str, entry: str, ttl: int, max_entries: int | None = None) -> bool:
        """Append an entry unless the bucket holds `max_entries`; False when it did."""
        if max_entries is not None:
            size: Any = self.client.llen(name + LOG)
            if int(size or 0) >= max_entries:
                return False
        pipe = self.client.pipeline(transaction=True)
        pipe.set(name + EPOCH, uuid.uuid4().hex, nx=True, ex=ttl)
        pipe.rpush(name + LOG, entry)
        pipe.expire(name + LOG, ttl)
        pipe.expire(name + EPOCH, ttl)
        pipe.execute()
        return True


def added(job_id: uuid.UUID, vector: list[float]) -> str:
    """The entry of a stored answer."""
    packed = base64.b64encode(np.asarray(vector, dtype=np.float32).tobytes()).decode()
    return f"{job_id} {packed}"


def dropped(job_id: uuid.UUID) -> str:
    """The entry that drops a stored answer."""
    return f"-{job_id}"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
