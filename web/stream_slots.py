"""Fair shares of open event streams and long-polls: slots counted in Redis, with expiry.

Each open stream or long-poll holds one slot in each of its scopes: its user (guests are
users), the user's job, and for a guest its client address (guests cost nothing to mint). A
scope is a sorted set of slot ids scored by their expiry on Redis' clock; a stream renews its
slot at every keep-alive, so the slots of a process that died lapse after
`STREAM_SLOT_TTL_SECONDS` instead of being held forever. This process also counts the slots it
holds, so a caller already at a limit here is refused without a Redis round trip.

Redis unreachable: the process's own counts still apply and the request goes on (logged); the
stream itself then answers 503 unless its job is finished and can be replayed from its row.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis

from common.platform.errors import TooManyRequests
from common.platform.models import Role
from common.platform.settings import Settings

log = logging.getLogger(__name__)
# Streams end when their job does, or their reader leaves: a few seconds is a fair next try.
RETRY_AFTER_SECONDS = 5
_PREFIX = "bookchat:streams"

# KEYS: the scopes; ARGV: slot id, TTL seconds, then each scope's limit. Returns 0 when the
# slot is taken in every scope, else the (1-based) index of the first scope that is full.
_ACQUIRE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local ttl = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= tonumber(ARGV[2 + i]) then
    return i
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, ARGV[1])
  redis.call('EXPIRE', key, math.ceil(ttl) + 1)
end
return 0
"""
# KEYS: the scopes; ARGV: slot id, TTL seconds. Pushes the slot's expiry forward.
_RENEW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local ttl = tonumber(ARGV[2])
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, ARGV[1])
  redis.call('EXPIRE', key, math.ceil(ttl) + 1)
end
return 0
"""


class TooManyStreams(TooManyRequests):
    """429: this caller holds as many open streams and long-polls as its share allows."""

    code, title = "too_many_streams", "Too many open streams"


@dataclass(frozen=True)
class Scope:
    """One count a slot takes part in: its Redis key, its limit, and who it is for."""

    name: str  # "user", "job" or "guest-address": the 429's `scope`
    key: str
    limit: int


@dataclass(eq=False)
class Slot:
    """A held place for one open stream or long-poll; `release` is safe to call twice."""

    owner: StreamSlots
    id: str
    scopes: tuple[Scope, ...]
    renewed: float = field(default_factory=time.monotonic)
    released: bool = False

    def renew(self) -> None:
        """Push the slot's expiry forward (an open stream calls this at each keep-alive)."""
        self.renewed = time.monotonic()
        self.owner.renew(self)

    def release(self) -> None:
        """Give the slot back."""
        self.owner.release(self)


def stream_scopes(
    settings: Settings, user_id: uuid.UUID, role: str, job_id: uuid.UUID, address: str
) -> tuple[Scope, ...]:
    """The scopes of one stream or long-poll on `job_id` by this user from `address`."""
    scopes = [
        Scope("user", f"{_PREFIX}:user:{user_id}", settings.stream_limit_per_user),
        Scope("job", f"{_PREFIX}:job:{user_id}:{job_id}", settings.stream_limit_per_job),
    ]
    if role == Role.GUEST.value:
        key = f"{_PREFIX}:guest-address:{address}"
        scopes.append(Scope("guest-address", key, settings.stream_limit_guest_address))
    return tuple(scopes)


class StreamSlots:
    """Takes and gives back slots, in Redis (shared by every web process) and in this one."""

    def __init__(self, client: redis.Redis, ttl_seconds: float) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._lock = threading.Lock()
        self._held: Counter[str] = Counter()  # slots this process holds, by scope key

    def acquire(self, scopes: tuple[Scope, ...]) -> Slot:
        """A slot in every scope, or TooManyStreams naming the first scope that is full."""
        with self._lock:
            full = next((s for s in scopes if self._held[s.key] >= s.limit), None)
            if full is None:
                self._held.update(s.key for s in scopes)  # reserved while Redis is asked
        if full is not None:
            raise _refusal(full)
        slot = Slot(self, uuid.uuid4().hex, scopes)
        try:
            refused = int(self._run(self._acquire, slot, *(s.limit for s in scopes)))
        except redis.RedisError as exc:
            log.warning("stream slots not counted in Redis: %s", type(exc).__name__)
            return slot  # this process's own counts still hold
        if refused:
            self._forget(slot)
            raise _refusal(scopes[refused - 1])
        return slot

    def renew(self, slot: Slot) -> None:
        """Push a held slot's expiry forward in every scope."""
        if slot.released:
            return
        try:
            self._run(self._renew, slot)
        except redis.RedisError as exc:
            log.warning("stream slot not renewed: %s", type(exc).__name__)

    def release(self, slot: Slot) -> None:
        """Give a slot back (once; later calls do nothing)."""
        if not self._forget(slot):
            return
        try:
            pipe = self._client.pipeline(transaction=False)
            for scope in slot.scopes:
                pipe.zrem(scope.key, slot.id)
            pipe.execute()
        except redis.RedisError as exc:
            # Not lost: the slot lapses on its own after its TTL.
            log.warning("stream slot not released: %s", type(exc).__name__)

    def _run(self, script: Any, slot: Slot, *extra: int) -> Any:
        keys = [scope.key for scope in slot.scopes]
        return script(keys=keys, args=[slot.id, self._ttl, *extra])

    def _forget(self, slot: Slot) -> bool:
        with self._lock:
            if slot.released:
                return False
            slot.released = True
            self._held.subtract(s.key for s in slot.scopes)
            for scope in slot.scopes:
                if self._held[scope.key] <= 0:
                    del self._held[scope.key]
            return True


def _refusal(scope: Scope) -> TooManyStreams:
    who = {"user": "this user", "job": "this job", "guest-address": "guests at this address"}
    return TooManyStreams(
        f"too many open streams and long-polls for {who[scope.name]}: the limit is "
        f"{scope.limit}; close one or retry in {RETRY_AFTER_SECONDS}s",
        retry_after=RETRY_AFTER_SECONDS,
        scope=scope.name,
        limit=scope.limit,
    )
