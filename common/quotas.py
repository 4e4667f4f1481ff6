"""Daily model-token quotas and the service's daily budget: reserved at submit, settled at the end.

Counters live in Redis, one per identity and UTC day, keyed by a keyed hash of who is
spending rather than by a row id: an account counts under its normalized email (deleting it
and signing up again keeps the day's count), a guest under its id and under its address
(minting new guests from one address shares one allowance). A submit reserves an estimate of
the job's tokens on every counter it touches, in one Lua script, so concurrent submits can
never reserve past a quota or the budget; the worker replaces the estimate with the real
usage when the job ends, or gives it back when the job fails or is cancelled before a model
call. Deleting an account leaves its counters alone: they expire after their day.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import redis

from common.errors import ServiceUnavailable, TooManyRequests
from common.models import Role
from common.settings import Settings

log = logging.getLogger(__name__)
KEY_PREFIX = "quota:tokens"
BUDGET_PREFIX = "budget:tokens"
RESERVATION_PREFIX = "quota:reserved"
# A day's counter outlives its midnight so a job reserved late in the day settles on it.
EXPIRY_SLACK = timedelta(days=1)
# A reservation (and the marker that a job was settled) outlives any redelivery of its task.
RESERVATION_SECONDS = 2 * 86400
BUDGET_EXHAUSTED = "budget_exhausted"

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


class QuotaExceeded(TooManyRequests):
    """429: the daily token quota is used up until `resets_at` (UTC midnight)."""

    code, title = "token_quota_exceeded", "Daily token quota exceeded"


class BudgetExhausted(ServiceUnavailable):
    """503: the service's daily model-token budget is spent until `resets_at` (UTC midnight)."""

    code, title = BUDGET_EXHAUSTED, "Daily model budget exhausted"

    def __init__(self, detail: str, retry_after: int, **extensions: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **extensions)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        """Retry-After: seconds until the UTC day rolls over."""
        return {"Retry-After": str(self.retry_after)}


@dataclass(frozen=True)
class Spender:
    """Who a job's tokens count against: hashed identities, each with its daily quota."""

    quotas: tuple[tuple[str, int], ...]  # (identity, daily tokens; 0 = counted, no quota)


def _identity(settings: Settings, kind: str, value: str) -> str:
    # HMAC with the app's secret: stable across deletion, and no email or address in clear.
    key = hashlib.sha256(b"bookchat-quota:" + settings.jwt_secret().encode()).digest()
    digest = hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{kind}:{digest}"


def spender_of(
    settings: Settings,
    user_id: uuid.UUID,
    role: str | None,
    email: str | None,
    external_id: str | None = None,
    address: str | None = None,
) -> Spender:
    """The identities a user's tokens count against (admins: none, only the budget)."""
    if role == Role.ADMIN.value:
        return Spender(())
    if role == Role.GUEST.value:
        quotas = [(_identity(settings, "guest", str(user_id)), settings.guest_daily_tokens)]
        if address:
            per_address = settings.guest_address_daily_tokens
            quotas.append((_identity(settings, "address", address), per_address))
        return Spender(tuple(quotas))
    # Emails are stored normalized; a Better Auth account without one counts by its subject.
    who = email.strip().lower() if email else f"external:{external_id or user_id}"
    return Spender(((_identity(settings, "account", who), settings.user_daily_tokens),))


def next_reset(now: datetime | None = None) -> datetime:
    """The next UTC midnight, when every daily counter starts again."""
    now = now or datetime.now(UTC)
    return datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def _day(now: datetime) -> str:
    return now.date().isoformat()


def quota_key(identity: str, now: datetime | None = None) -> str:
    """The Redis key of an identity's counter for the UTC day of `now`."""
    return f"{KEY_PREFIX}:{identity}:{_day(now or datetime.now(UTC))}"


def budget_key(now: datetime | None = None) -> str:
    """The Redis key of the service's token counter for the UTC day of `now`."""
    return f"{BUDGET_PREFIX}:{_day(now or datetime.now(UTC))}"


def reservation_key(job_id: uuid.UUID) -> str:
    """The Redis key of a job's reservation: the counters it holds tokens on, and how many."""
    return f"{RESERVATION_PREFIX}:{job_id}"


def _settled_key(job_id: uuid.UUID) -> str:
    return f"{RESERVATION_PREFIX}:settled:{job_id}"


def tokens_used(client: redis.Redis, identity: str, now: datetime | None = None) -> int:
    """Tokens counted (reserved or spent) against an identity today (UTC)."""
    return int(cast(str | None, client.get(quota_key(identity, now))) or 0)


def budget_used(client: redis.Redis, now: datetime | None = None) -> int:
    """Tokens counted (reserved or spent) against the service's budget today (UTC)."""
    return int(cast(str | None, client.get(budget_key(now))) or 0)


def _counters(spender: Spender, budget: int, now: datetime) -> list[tuple[str, int]]:
    # A quota or budget of 0 is off: nothing is counted for it.
    counters = [(quota_key(identity, now), quota) for identity, quota in spender.quotas if quota]
    if budget:
        counters.append((budget_key(now), budget))
    return counters


def _seconds_to_reset(now: datetime) -> int:
    return max(1, int((next_reset(now) - now).total_seconds()))


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
    counters = _counters(spender, settings.llm_daily_token_budget, now)
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
        _refuse(keys[refused - 1], limits[refused - 1], int(used), tokens, now)


def _refuse(key: str, limit: int, used: int, tokens: int, now: datetime) -> None:
    resets_at = next_reset(now)
    retry_after = _seconds_to_reset(now)
    if key.startswith(BUDGET_PREFIX):
        raise BudgetExhausted(
            "the service has spent its model budget for today; answers resume at "
            f"{resets_at.isoformat()}",
            retry_after=retry_after,
            resets_at=resets_at.isoformat(),
        )
    held = f" (a question holds about {tokens} until it is answered)" if tokens else ""
    raise QuotaExceeded(
        f"you have used your {limit} model tokens for today{held}; the quota resets at "
        f"{resets_at.isoformat()}",
        retry_after=retry_after,
        resets_at=resets_at.isoformat(),
        quota=limit,
        used=used,
        needed=tokens,
    )


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


def check_spend(
    client: redis.Redis, spender: Spender, settings: Settings, now: datetime | None = None
) -> None:
    """Refuse (429 or 503) when a quota or the budget has nothing left; reserves nothing.

    For jobs whose cost is not known at submit (chapter rewrites): the worker charges their
    real usage when they end.
    """
    now = now or datetime.now(UTC)
    counters = _counters(spender, settings.llm_daily_token_budget, now)
    if not counters:
        return
    values = cast(list[str | None], client.mget([key for key, _ in counters]))
    for (key, limit), value in zip(counters, values, strict=True):
        if int(value or 0) >= limit:
            _refuse(key, limit, int(value or 0), 0, now)


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


def charge_tokens(
    client: redis.Redis,
    spender: Spender,
    tokens: int,
    budget: int = 0,
    now: datetime | None = None,
) -> None:
    """Add spent tokens to the spender's counters (and the budget's, when there is one)."""
    now = now or datetime.now(UTC)
    counters = _counters(spender, budget, now)
    if tokens <= 0 or not counters:
        return
    expire_at = next_reset(now) + EXPIRY_SLACK
    pipe = client.pipeline()
    for key, _ in counters:
        pipe.incrby(key, tokens)
        pipe.expireat(key, expire_at)
    pipe.execute()


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


def budget_refusal(now: datetime | None = None) -> str:
    """The message of a job the worker refused because the day's budget is spent."""
    resets_at = next_reset(now or datetime.now(UTC))
    return f"the service's daily model budget is spent; ask again after {resets_at.isoformat()}"


def usage_tokens(usage: dict[str, Any] | None) -> int:
    """The tokens a model call's usage reports (prompt plus completion); 0 without usage."""
    if not usage:
        return 0
    total = usage.get("total_tokens")
    if isinstance(total, int):
        return total
    parts = (usage.get("prompt_tokens"), usage.get("completion_tokens"))
    return sum(part for part in parts if isinstance(part, int))
