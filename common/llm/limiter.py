"""A rate limiter shared by every worker: requests and tokens charged together in Redis.

Each model has two GCRA buckets (requests and tokens) as deep as the provider's own (a minute
of the configured rate), of which only `burst_seconds` is used until the provider confirms it.
One Lua script reads Redis `TIME`, finds the earliest moment both buckets can take the call,
and reserves it when that moment is near enough. The caller then sleeps until
its reserved time, or hands the work back to the queue when the wait is long.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import redis

from common.llm.provider_headers import RateLimitState

_ACQUIRE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1e6
local rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2])
local cost, burst, max_wait = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local hold, window = ARGV[6] == '1', tonumber(ARGV[7])
local req_step, tok_step = 60.0 / rpm, 60.0 / tpm
if cost > tpm then return {'-1', tostring(now), '0', '0'} end
-- A caller holding a ticket already owns a future slot: use it, or keep waiting for it.
if hold then
  local ticket = redis.call('GET', KEYS[4])
  if ticket then
    local at, req_mark, tok_mark = string.match(ticket, '([^|]+)|([^|]+)|([^|]+)')
    local wait = math.max(0, tonumber(at) - now)
    if wait <= max_wait then
      redis.call('DEL', KEYS[4])
      return {'1', tostring(wait), req_mark, tok_mark}
    end
    return {'2', tostring(wait), '0', '0'}
  end
end
-- A bucket always holds at least one call, however large. Its depth is the provider's window;
-- until the provider has confirmed its credit, only `burst` seconds of it are used.
local burst_r, burst_t = math.max(burst, req_step), math.max(burst, cost * tok_step)
local depth_r, depth_t = math.max(window, burst_r), math.max(window, burst_t)
local stored_r, stored_t = redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2])
local tat_r = stored_r and math.max(tonumber(stored_r), now) or now + depth_r - burst_r
local tat_t = stored_t and math.max(tonumber(stored_t), now) or now + depth_t - burst_t
local pause = tonumber(redis.call('GET', KEYS[3]) or '0')
local allow_at = math.max(now, tat_r + req_step - depth_r, tat_t + cost * tok_step - depth_t, pause)
local delay = allow_at - now
if delay > max_wait and not hold then return {'0', tostring(delay), '0', '0'} end
local ttl = math.ceil(depth_r + depth_t + delay + 120)
redis.call('SET', KEYS[1], tostring(math.max(tat_r, allow_at) + req_step), 'EX', ttl)
redis.call('SET', KEYS[2], tostring(math.max(tat_t, allow_at) + cost * tok_step), 'EX', ttl)
-- Running totals of what was reserved, so a provider reading can tell what it has not seen.
local req_mark = redis.call('INCRBY', KEYS[5], 1)
local tok_mark = redis.call('INCRBY', KEYS[6], cost)
if delay <= max_wait then return {'1', tostring(delay), req_mark, tok_mark} end
-- Book the slot now and hand out a ticket, so waiting callers are scheduled, not polling.
local ticket = allow_at .. '|' .. req_mark .. '|' .. tok_mark
redis.call('SET', KEYS[4], ticket, 'EX', math.ceil(delay + 3600))
return {'2', tostring(delay), '0', '0'}
"""

_ADJUST = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1e6
local step, delta = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
local target = math.max(tat + delta * step, now)
redis.call('SET', KEYS[1], tostring(target), 'EX', math.ceil(target - now + 180))
return tostring(target - now)
"""

_SYNC = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1e6
local step, depth, remaining = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local age, mark, loosen = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6] == '1'
-- What the provider had left when it answered, refilled since, less what we reserved after.
local pending = 0
if mark >= 0 then pending = math.max(0, tonumber(redis.call('GET', KEYS[2]) or '0') - mark) end
local credit = math.min(depth / step, remaining + age / step) - pending
local target = now + depth - credit * step
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
if not loosen and target < tat then return tostring(tat - now) end
redis.call('SET', KEYS[1], tostring(target), 'EX', math.ceil(target - now + depth + 120))
return tostring(target - now)
"""

_PAUSE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1e6
local until_at = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_at > current then
  redis.call('SET', KEYS[1], tostring(until_at), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
  return tostring(until_at - now)
end
return tostring(current - now)
"""


class RequestTooLarge(Exception):
    """One call costs more tokens than the bucket can ever hold."""


@dataclass(frozen=True)
class Limits:
    rpm: int
    tpm: int
    burst_seconds: float = 10.0
    headroom: float = 0.98
    # The provider's own buckets hold a minute of credit; 0 keeps ours at `burst_seconds`.
    credit_window_seconds: float = 60.0

    @property
    def effective_rpm(self) -> float:
        """Requests per minute we aim for, a little under the provider's limit."""
        return self.rpm * self.headroom

    @property
    def effective_tpm(self) -> float:
        """Tokens per minute we aim for."""
        return self.tpm * self.headroom

    @property
    def depth_seconds(self) -> float:
        """How many seconds of rate a bucket can hold once the provider confirms it."""
        return max(self.credit_window_seconds, self.burst_seconds)


@dataclass(frozen=True)
class Mark:
    """The running totals just after a reservation: what was reserved up to and including it."""

    requests: int
    tokens: int


@dataclass(frozen=True)
class Reservation:
    granted: bool
    delay: float
    booked: bool = False  # not yet, but a ticket holds a slot `delay` seconds from now
    mark: Mark | None = None  # set when granted


class RateLimiter:
    """Reservation-style GCRA over Redis for one model's requests and tokens.

    A fresh bucket grants `burst_seconds` of rate. Each response's `x-ratelimit-remaining-*`
    then sets the bucket to the credit the provider really has, less what was reserved since
    that call, so a short spike can spend the provider's stored minute without a 429.
    """

    def __init__(self, client: redis.Redis, model: str, limits: Limits) -> None:
        self.client = client
        self.limits = limits
        prefix = f"bookchat:limiter:{model}"
        self.keys = (f"{prefix}:requests", f"{prefix}:tokens", f"{prefix}:pause")
        self.totals = (f"{prefix}:requests:reserved", f"{prefix}:tokens:reserved")
        self._acquire = client.register_script(_ACQUIRE)
        self._adjust = client.register_script(_ADJUST)
        self._sync = client.register_script(_SYNC)
        self._pause = client.register_script(_PAUSE)

    def reserve(self, tokens: int, max_wait: float, ticket: str | None = None) -> Reservation:
        """Reserve a slot for a call of `tokens` if it can start within `max_wait` seconds.

        With a `ticket` name, a longer wait books the slot anyway and remembers it under that
        name: the caller comes back when its job is due again and finds its slot waiting.
        """
        args = [
            self.limits.effective_rpm,
            self.limits.effective_tpm,
            tokens,
            self.limits.burst_seconds,
            max_wait,
            "1" if ticket else "0",
            self.limits.credit_window_seconds,
        ]
        ticket_key = f"bookchat:limiter:ticket:{ticket}" if ticket else "-"
        reply = self._acquire(keys=[*self.keys, ticket_key, *self.totals], args=args)
        outcome, delay, requests, tokens_mark = (_text(part) for part in reply)
        if outcome == "-1":
            raise RequestTooLarge(f"{tokens} tokens exceed the limiter's capacity")
        if outcome == "1":
            mark = Mark(int(requests), int(tokens_mark))
            return Reservation(True, float(delay), mark=mark)
        return Reservation(False, float(delay), booked=outcome == "2")

    def reconcile(self, estimated_tokens: int, actual_tokens: int) -> None:
        """Correct the token bucket once the provider reported what the call really cost."""
        delta = actual_tokens - estimated_tokens
        if delta:
            self._adjust(keys=[self.keys[1]], args=[60.0 / self.limits.effective_tpm, delta])

    def pause(self, seconds: float, jitter: float = 0.1) -> float:
        """Hold every worker's calls for `seconds` (plus jitter); returns the pause left."""
        wait = seconds * (1 + random.uniform(0, jitter))
        return float(self._pause(keys=[self.keys[2]], args=[wait]))

    def observe(self, state: RateLimitState, age: float = 0.0, mark: Mark | None = None) -> bool:
        """Set the buckets to the credit the provider reported; True if the tokens were set.

        `age` is how long ago the provider measured it (the call's start): its bucket has
        refilled by that much since. `mark` is the call's reservation: calls reserved after it
        are not in the provider's figure yet. Without a mark the reading can only slow us down.
        """
        depth = self.limits.depth_seconds
        loosen = mark is not None and self.limits.credit_window_seconds > self.limits.burst_seconds
        tokens_set = False
        for key, total, limit, remaining, reserved in (
            (
                self.keys[0],
                self.totals[0],
                self.limits.effective_rpm,
                state.remaining_requests,
                mark.requests if mark else None,
            ),
            (
                self.keys[1],
                self.totals[1],
                self.limits.effective_tpm,
                state.remaining_tokens,
                mark.tokens if mark else None,
            ),
        ):
            if remaining is None:
                continue
            pending_since = reserved if reserved is not None else -1
            args = [60.0 / limit, depth, remaining, age, pending_since, "1" if loosen else "0"]
            self._sync(keys=[key, total], args=args)
            tokens_set = tokens_set or key == self.keys[1]
        return tokens_set

    def snapshot(self) -> dict[str, Any]:
        """The raw bucket state, for diagnostics."""
        values: Any = self.client.mget(list(self.keys))
        return dict(zip(("requests_tat", "tokens_tat", "pause_until"), values, strict=True))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
