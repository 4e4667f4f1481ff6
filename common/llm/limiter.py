"""A rate limiter shared by every worker: requests and tokens charged together in Redis.

Each model has two GCRA buckets (requests and tokens) whose capacity is `burst_seconds` of the
configured rate. One Lua script reads Redis `TIME`, finds the earliest moment both buckets can
take the call, and reserves it when that moment is near enough. The caller then sleeps until
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
local hold = ARGV[6] == '1'
local req_step, tok_step = 60.0 / rpm, 60.0 / tpm
if cost > tpm then return {'-1', tostring(now)} end
-- A caller holding a ticket already owns a future slot: use it, or keep waiting for it.
if hold then
  local ticket = redis.call('GET', KEYS[4])
  if ticket then
    local wait = math.max(0, tonumber(ticket) - now)
    if wait <= max_wait then
      redis.call('DEL', KEYS[4])
      return {'1', tostring(wait)}
    end
    return {'2', tostring(wait)}
  end
end
-- A bucket always holds at least one call, however large.
local burst_r, burst_t = math.max(burst, req_step), math.max(burst, cost * tok_step)
local tat_r = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
local tat_t = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), now)
local pause = tonumber(redis.call('GET', KEYS[3]) or '0')
local allow_at = math.max(now, tat_r + req_step - burst_r, tat_t + cost * tok_step - burst_t, pause)
local delay = allow_at - now
if delay <= max_wait then
  local ttl = math.ceil(burst_r + burst_t + delay + 120)
  redis.call('SET', KEYS[1], tostring(math.max(tat_r, allow_at) + req_step), 'EX', ttl)
  redis.call('SET', KEYS[2], tostring(math.max(tat_t, allow_at) + cost * tok_step), 'EX', ttl)
  return {'1', tostring(delay)}
end
if hold then
  -- Book the slot now and hand out a ticket, so waiting callers are scheduled, not polling.
  local ttl = math.ceil(burst_r + burst_t + delay + 120)
  redis.call('SET', KEYS[1], tostring(math.max(tat_r, allow_at) + req_step), 'EX', ttl)
  redis.call('SET', KEYS[2], tostring(math.max(tat_t, allow_at) + cost * tok_step), 'EX', ttl)
  redis.call('SET', KEYS[4], tostring(allow_at), 'EX', math.ceil(delay + 3600))
  return {'2', tostring(delay)}
end
return {'0', tostring(delay)}
"""

_ADJUST = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1e6
local step, delta, floor_at = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
local target = math.max(tat + delta * step, now)
if floor_at >= 0 then target = math.max(tat, now + floor_at) end
redis.call('SET', KEYS[1], tostring(target), 'EX', math.ceil(target - now + 180))
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

    @property
    def effective_rpm(self) -> float:
        """Requests per minute we aim for, a little under the provider's limit."""
        return self.rpm * self.headroom

    @property
    def effective_tpm(self) -> float:
        """Tokens per minute we aim for."""
        return self.tpm * self.headroom


@dataclass(frozen=True)
class Reservation:
    granted: bool
    delay: float
    booked: bool = False  # not yet, but a ticket holds a slot `delay` seconds from now


class RateLimiter:
    """Reservation-style GCRA over Redis for one model's requests and tokens."""

    def __init__(self, client: redis.Redis, model: str, limits: Limits) -> None:
        self.client = client
        self.limits = limits
        prefix = f"bookchat:limiter:{model}"
        self.keys = (f"{prefix}:requests", f"{prefix}:tokens", f"{prefix}:pause")
        self._acquire = client.register_script(_ACQUIRE)
        self._adjust = client.register_script(_ADJUST)
        self._pause = client.register_script(_PAUSE)

    def reserve(self, tokens: int, max_wait: float, ticket: str | None = None) -> Reservation:
        """Reserve a slot for a call of `tokens` if it can start within `max_wait` seconds.

        With a `ticket` name, a longer wait books the slot anyway and remembers it under that
        name: the caller comes back when its countdown ends and finds its slot waiting.
        """
        args = [
            self.limits.effective_rpm,
            self.limits.effective_tpm,
            tokens,
            self.limits.burst_seconds,
            max_wait,
            "1" if ticket else "0",
        ]
        ticket_key = f"bookchat:limiter:ticket:{ticket}" if ticket else "-"
        outcome, delay = self._acquire(keys=[*self.keys, ticket_key], args=args)
        outcome = outcome.decode() if isinstance(outcome, bytes) else str(outcome)
        if outcome == "-1":
            raise RequestTooLarge(f"{tokens} tokens exceed the limiter's capacity")
        return Reservation(outcome == "1", float(delay), booked=outcome == "2")

    def reconcile(self, estimated_tokens: int, actual_tokens: int) -> None:
        """Correct the token bucket once the provider reported what the call really cost."""
        delta = actual_tokens - estimated_tokens
        if delta:
            self._adjust(keys=[self.keys[1]], args=[60.0 / self.limits.effective_tpm, delta, -1])

    def pause(self, seconds: float, jitter: float = 0.1) -> float:
        """Hold every worker's calls for `seconds` (plus jitter); returns the pause left."""
        wait = seconds * (1 + random.uniform(0, jitter))
        return float(self._pause(keys=[self.keys[2]], args=[wait]))

    def observe(self, state: RateLimitState, age: float = 0.0) -> None:
        """Slow down when the provider reports less room left than we think it has.

        `age` is how long ago the provider measured it (the call's start): the bucket has
        refilled by that much since.
        """
        burst = self.limits.burst_seconds
        for key, limit, remaining in (
            (self.keys[0], self.limits.effective_rpm, state.remaining_requests),
            (self.keys[1], self.limits.effective_tpm, state.remaining_tokens),
        ):
            if remaining is None:
                continue
            step = 60.0 / limit
            capacity = burst / step
            used = capacity - remaining
            if used * step > age:
                self._adjust(keys=[key], args=[step, 0, used * step - age])

    def snapshot(self) -> dict[str, Any]:
        """The raw bucket state, for diagnostics."""
        values: Any = self.client.mget(list(self.keys))
        return dict(zip(("requests_tat", "tokens_tat", "pause_until"), values, strict=True))
