"""Token reservations: a submit holds its estimate on every counter, the worker settles it.

A submit reserves an estimate of the job's tokens on each of its quotas and the day's budget
in one Lua script, so concurrent submits can never reserve past either; the worker replaces
the estimate with the real usage when the job ends, or gives it back when the job fails or is
cancelled before a model call. The record of what a job holds outlives any redelivery of its
task, so a job is settled once.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import redis

from common.accounts.quotas import (
    EXPIRY_SLACK,
    Spender,
    budget_key,
    budget_used,
    charge_tokens,
    counters_of,
    next_reset,
    refuse,
)
from common.platform.settings import Settings

log = logging.getLogger(__name__)
RESERVATION_PREFIX = "quota:reserved"
# A reservation (and the marker that a job was settled) outlives any redelivery of its task.
RESERVATION_SECONDS = 2 * 86400

# KEYS: reservation, then the counters; ARGV: tokens, expire-at, reservation ttl, record,
# then each counter's limit (0: counted, never refused). Returns {0} or {index, used}.
_RESERVE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, 0} end
local tokens = tonumber(ARGV[1])
for i = 2, #KEYS do
  local limit = tonumber(ARGV[i + 3])
  if limit > 0 then
    local used = tonumber(redis.call('GET', KEYS[i]) or '0')
    if used + tokens > limit then return {i - 1, used} end
  end
end
for i = 2, #KEYS do
  redis.call('INCRBY', KEYS[i], tokens)
  redis.call('EXPIREAT', KEYS[i], ARGV[2])
end
redis.call('SET', KEYS[1], ARGV[4], 'EX', ARGV[3])
return {0, 0}
"""
# KEYS: reservation, settled marker, then its counters; ARGV: the change, the marker's ttl.
# A counter whose day has expired is left alone (INCRBY would revive it without an expiry).
_SETTLE = """
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], 1, 'EX', ARGV[2])
local change = tonumber(ARGV[1])
if change ~= 0 then
  for i = 3, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('INCRBY', KEYS[i], change) end
  end
end
return 1
"""


def reservation_key(job_id: uuid.UUID) -> str:
    """The Redis key of a job's reservation: the counters it holds tokens on, and how many."""
    return f"{RESERVATION_PREFIX}:{job_id}"


def _settled_key(job_id: uuid.UUID) -> str:
    return f"{RESERVATION_PREFIX}:settled:{job_id}"


def reserve_tokens(
    client: redis.Redis,
    job_id: uuid.UUID,
    spender: Spender,
    tokens: int,
    settings: Settings,
    now: datetime | None = None,
) -> None:
    """Reserve a job's estimated tokens on its quotas and the budget, all or nothing.

    Raises QuotaExceeded (429) or BudgetExhausted (503) when the estimate does not fit; a job
    that already holds a reservation keeps it. Redis errors propagate (the caller decides).
    """
    now = now or datetime.now(UTC)
    counters = counters_of(spender, settings.llm_daily_token_budget, now)
    if not counters:
        return
    keys = [key for key, _ in counters]
    record = json.dumps({"tokens": tokens, "keys": keys})
    expire_at = int((next_reset(now) + EXPIRY_SLACK).timestamp())
    limits = [limit for _, limit in counters]
    script = client.register_script(_RESERVE)
    refused, used = cast(
        list[int],
        script(
            keys=[reservation_key(job_id), *keys],
            args=[tokens, expire_at, RESERVATION_SECONDS, record, *limits],
        ),
    )
    if refused:
        refuse(keys[refused - 1], limits[refused - 1], int(used), tokens, now)


@dataclass(frozen=True)
class Reservation:
    """A submit's hold on tokens, taken before its job row exists and kept or given back after."""

    client: redis.Redis
    spender: Spender
    tokens: int
    settings: Settings

    def take(self, job_id: uuid.UUID) -> None:
        """Reserve for this job id (429 or 503 when it does not fit)."""
        reserve_tokens(self.client, job_id, self.spender, self.tokens, self.settings)

    def give_back(self, job_id: uuid.UUID) -> None:
        """Release this job id's reservation; a lost release only counts high until midnight."""
        try:
            release_tokens(self.client, job_id)
        except redis.RedisError:
            log.warning("could not release the token reservation of %s", job_id)

    def move(self, held_by: uuid.UUID, job_id: uuid.UUID) -> None:
        """Hand the reservation made for `held_by` to the job that will run (a retried submit)."""
        pipe = self.client.pipeline()
        pipe.exists(reservation_key(held_by))
        pipe.delete(_settled_key(job_id))
        exists, _ = pipe.execute()
        if exists:
            self.client.rename(reservation_key(held_by), reservation_key(job_id))


def settle_tokens(
    client: redis.Redis,
    job_id: uuid.UUID,
    tokens: int,
    fallback: Spender | None = None,
    budget: int = 0,
    now: datetime | None = None,
) -> None:
    """Replace a job's reservation with the tokens it really used (0 releases it); once a job.

    A job without a reservation (submitted without one, or its record lost) is charged its
    tokens on `fallback`'s counters and the budget instead, once.
    """
    raw = cast(str | None, client.get(reservation_key(job_id)))
    marker = _settled_key(job_id)
    if raw is not None:
        record = json.loads(raw)
        script = client.register_script(_SETTLE)
        change = tokens - int(record["tokens"])
        script(
            keys=[reservation_key(job_id), marker, *record["keys"]],
            args=[change, RESERVATION_SECONDS],
        )
        return
    if tokens <= 0 or fallback is None:
        return
    if client.set(marker, 1, nx=True, ex=RESERVATION_SECONDS):
        charge_tokens(client, fallback, tokens, budget, now)


def release_tokens(client: redis.Redis, job_id: uuid.UUID) -> None:
    """Give back a job's whole reservation (it failed or was cancelled before spending)."""
    settle_tokens(client, job_id, 0)


def budget_allows(
    client: redis.Redis, job_id: uuid.UUID, budget: int, now: datetime | None = None
) -> bool:
    """Whether the day's budget lets this job call the model (the worker asks first).

    A job holding today's reservation may run unless the day is already past the budget
    (real usage above estimates, or a budget lowered since); any other job needs room left.
    """
    if not budget:
        return True
    now = now or datetime.now(UTC)
    used = budget_used(client, now)
    raw = cast(str | None, client.get(reservation_key(job_id)))
    reserved_today = raw is not None and budget_key(now) in json.loads(raw)["keys"]
    return used <= budget if reserved_today else used < budget
