"""Daily model-token quotas: checked when a job is submitted, charged when it finishes.

One Redis counter per user and UTC day. The check happens before the job runs and the charge
after, so a user just under the quota can finish one last job past it; the next submit is
refused until UTC midnight.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import redis

from common.errors import TooManyRequests
from common.models import Role
from common.settings import Settings

log = logging.getLogger(__name__)
KEY_PREFIX = "quota:tokens"
# Keep a day's counter a little past its midnight so a late charge still finds the same key.
EXPIRY_SLACK = timedelta(hours=1)
# A job charges once even if its task runs twice; the marker outlives any redelivery.
CHARGED_MARKER_SECONDS = 2 * 86400


class QuotaExceeded(TooManyRequests):
    """429: the daily token quota is used up until `resets_at` (UTC midnight)."""

    code, title = "token_quota_exceeded", "Daily token quota exceeded"


def quota_for(role: str | None, settings: Settings) -> int:
    """The daily token quota of a role; 0 means none (admins never have one)."""
    if role == Role.ADMIN.value:
        return 0
    if role == Role.GUEST.value:
        return settings.guest_daily_tokens
    return settings.user_daily_tokens


def next_reset(now: datetime | None = None) -> datetime:
    """The next UTC midnight, when every daily counter starts again."""
    now = now or datetime.now(UTC)
    return datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def quota_key(user_id: uuid.UUID, now: datetime | None = None) -> str:
    """The Redis key of the user's counter for the UTC day of `now`."""
    day = (now or datetime.now(UTC)).date().isoformat()
    return f"{KEY_PREFIX}:{user_id}:{day}"


def tokens_used(client: redis.Redis, user_id: uuid.UUID, now: datetime | None = None) -> int:
    """Model tokens the user has been charged today (UTC)."""
    return int(cast(str | None, client.get(quota_key(user_id, now))) or 0)


def check_quota(
    client: redis.Redis,
    user_id: uuid.UUID,
    role: str | None,
    settings: Settings,
    now: datetime | None = None,
) -> None:
    """Raise QuotaExceeded when the user has used today's quota; admins always pass.

    Redis unreachable: the check passes (logged), like the request limits; the submit then
    meets the outage when it enqueues and answers 503 with its job recorded as failed.
    """
    quota = quota_for(role, settings)
    if quota == 0:
        return
    now = now or datetime.now(UTC)
    try:
        used = tokens_used(client, user_id, now)
    except redis.RedisError:
        log.warning("could not read the token quota of %s; letting the job through", user_id)
        return
    if used < quota:
        return
    resets_at = next_reset(now)
    raise QuotaExceeded(
        f"you have used your {quota} model tokens for today; the quota resets at "
        f"{resets_at.isoformat()}",
        retry_after=max(1, int((resets_at - now).total_seconds())),
        resets_at=resets_at.isoformat(),
        quota=quota,
        used=used,
    )


def charge_tokens(
    client: redis.Redis,
    user_id: uuid.UUID,
    tokens: int,
    job_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> int:
    """Add a finished job's real usage to today's counter (once per job); the new total."""
    now = now or datetime.now(UTC)
    key = quota_key(user_id, now)
    if tokens <= 0:
        return tokens_used(client, user_id, now)
    marker = f"{KEY_PREFIX}:charged:{job_id}"
    if job_id is not None and not client.set(marker, 1, nx=True, ex=CHARGED_MARKER_SECONDS):
        return tokens_used(client, user_id, now)
    pipe = client.pipeline()
    pipe.incrby(key, tokens)
    pipe.expireat(key, next_reset(now) + EXPIRY_SLACK)
    total, _ = pipe.execute()
    return int(total)


def usage_tokens(usage: dict[str, Any] | None) -> int:
    """The tokens a model call's usage reports (prompt plus completion); 0 without usage."""
    if not usage:
        return 0
    total = usage.get("total_tokens")
    if isinstance(total, int):
        return total
    parts = (usage.get("prompt_tokens"), usage.get("completion_tokens"))
    return sum(part for part in parts if isinstance(part, int))
