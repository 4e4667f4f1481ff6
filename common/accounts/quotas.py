"""Daily model-token quotas and the service's daily budget: who spends, and the day's counters.

Counters live in Redis, one per identity and UTC day, keyed by a keyed hash of who is
spending rather than by a row id: an account counts under its normalized email (deleting it
and signing up again keeps the day's count), a guest under its id and under its address
(minting new guests from one address shares one allowance). Deleting an account leaves its
counters alone: they expire after their day. Chat jobs reserve on these counters at submit
and settle at the end (common/accounts/token_reservations.py).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import redis

from common.platform.errors import ServiceBusy, TooManyRequests
from common.platform.models import Role
from common.platform.settings import Settings

KEY_PREFIX = "quota:tokens"
BUDGET_PREFIX = "budget:tokens"
# A day's counter outlives its midnight so a job reserved late in the day settles on it.
EXPIRY_SLACK = timedelta(days=1)
BUDGET_EXHAUSTED = "budget_exhausted"


class QuotaExceeded(TooManyRequests):
    """429: the daily token quota is used up until `resets_at` (UTC midnight)."""

    code, title = "token_quota_exceeded", "Daily token quota exceeded"


class BudgetExhausted(ServiceBusy):
    """503: the service's daily model-token budget is spent until `resets_at` (UTC midnight)."""

    code, title = BUDGET_EXHAUSTED, "Daily model budget exhausted"


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


def reserves_tokens(settings: Settings, role: str | None) -> bool:
    """Whether a question of this role has a counter to reserve on (its quota or the budget)."""
    if settings.llm_daily_token_budget:
        return True
    if role == Role.ADMIN.value:
        return False
    if role == Role.GUEST.value:
        return bool(settings.guest_daily_tokens or settings.guest_address_daily_tokens)
    return bool(settings.user_daily_tokens)


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


def tokens_used(client: redis.Redis, identity: str, now: datetime | None = None) -> int:
    """Tokens counted (reserved or spent) against an identity today (UTC)."""
    return int(cast(str | None, client.get(quota_key(identity, now))) or 0)


def budget_used(client: redis.Redis, now: datetime | None = None) -> int:
    """Tokens counted (reserved or spent) against the service's budget today (UTC)."""
    return int(cast(str | None, client.get(budget_key(now))) or 0)


def counters_of(spender: Spender, budget: int, now: datetime) -> list[tuple[str, int]]:
    """The day's counters a spender's tokens go on, each with its limit (the budget's last)."""
    # A quota or budget of 0 is off: nothing is counted for it.
    counters = [(quota_key(identity, now), quota) for identity, quota in spender.quotas if quota]
    if budget:
        counters.append((budget_key(now), budget))
    return counters


def seconds_to_reset(now: datetime) -> int:
    """Whole seconds until the next UTC midnight (at least 1): the Retry-After of a refusal."""
    return max(1, int((next_reset(now) - now).total_seconds()))


def refuse(key: str, limit: int, used: int, tokens: int, now: datetime) -> None:
    """Raise the refusal of the counter `key`: BudgetExhausted (503) or QuotaExceeded (429)."""
    resets_at = next_reset(now)
    retry_after = seconds_to_reset(now)
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


def check_spend(
    client: redis.Redis, spender: Spender, settings: Settings, now: datetime | None = None
) -> None:
    """Refuse (429 or 503) when a quota or the budget has nothing left; reserves nothing.

    For jobs whose cost is not known at submit (chapter rewrites): the worker charges their
    real usage when they end.
    """
    now = now or datetime.now(UTC)
    counters = counters_of(spender, settings.llm_daily_token_budget, now)
    if not counters:
        return
    values = cast(list[str | None], client.mget([key for key, _ in counters]))
    for (key, limit), value in zip(counters, values, strict=True):
        if int(value or 0) >= limit:
            refuse(key, limit, int(value or 0), 0, now)


def charge_tokens(
    client: redis.Redis,
    spender: Spender,
    tokens: int,
    budget: int = 0,
    now: datetime | None = None,
) -> None:
    """Add spent tokens to the spender's counters (and the budget's, when there is one)."""
    now = now or datetime.now(UTC)
    counters = counters_of(spender, budget, now)
    if tokens <= 0 or not counters:
        return
    expire_at = next_reset(now) + EXPIRY_SLACK
    pipe = client.pipeline()
    for key, _ in counters:
        pipe.incrby(key, tokens)
        pipe.expireat(key, expire_at)
    pipe.execute()


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
