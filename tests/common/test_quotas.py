"""Daily token quotas in a real Redis: the check, the charge, the day they belong to."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import cast

import pytest
import redis

from common.quotas import (
    QuotaExceeded,
    charge_tokens,
    check_quota,
    next_reset,
    quota_key,
    tokens_used,
    usage_tokens,
)
from common.redis_client import make_redis
from common.settings import Settings
from tests.support.stack import make_settings

# Noon tomorrow: a day's counter expires after its midnight, so the day must not be over yet.
NOON = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), time(12), tzinfo=UTC)
MIDNIGHT = next_reset(NOON)


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    """Quotas of 1000 tokens a day for users and 100 for guests."""
    return make_settings(tmp_path, redis_url, user_daily_tokens=1000, guest_daily_tokens=100)


@pytest.fixture
def client(settings: Settings) -> Iterator[redis.Redis]:
    """A client like the app's on the shared test Redis (users are fresh ids: keys never mix)."""
    made = make_redis(settings)
    yield made
    made.close()


def test_under_the_quota_a_user_passes(client: redis.Redis, settings: Settings) -> None:
    user = uuid.uuid4()
    charge_tokens(client, user, 999, now=NOON)

    check_quota(client, user, "user", settings, now=NOON)  # no exception


def test_at_the_quota_a_user_is_refused_until_utc_midnight(
    client: redis.Redis, settings: Settings
) -> None:
    user = uuid.uuid4()
    charge_tokens(client, user, 600, now=NOON)
    charge_tokens(client, user, 400, now=NOON)

    with pytest.raises(QuotaExceeded) as refused:
        check_quota(client, user, "user", settings, now=NOON)

    error = refused.value
    assert (error.status, error.code) == (429, "token_quota_exceeded")
    assert error.extensions["resets_at"] == MIDNIGHT.isoformat()
    assert MIDNIGHT.isoformat().endswith("T00:00:00+00:00")
    assert error.extensions["used"] == 1000 and error.extensions["quota"] == 1000
    assert error.retry_after == 12 * 3600
    assert error.headers == {"Retry-After": str(12 * 3600)}
    assert MIDNIGHT.isoformat() in error.detail


def test_guests_have_the_smaller_quota(client: redis.Redis, settings: Settings) -> None:
    guest = uuid.uuid4()
    charge_tokens(client, guest, 100, now=NOON)

    check_quota(client, guest, "user", settings, now=NOON)  # a user's quota would allow it
    with pytest.raises(QuotaExceeded):
        check_quota(client, guest, "guest", settings, now=NOON)


def test_admins_and_a_zero_quota_are_never_refused(client: redis.Redis, settings: Settings) -> None:
    user = uuid.uuid4()
    charge_tokens(client, user, 10**9, now=NOON)
    unlimited = settings.model_copy(update={"user_daily_tokens": 0})

    check_quota(client, user, "admin", settings, now=NOON)
    check_quota(client, user, "user", unlimited, now=NOON)


def test_a_new_utc_day_starts_from_zero(client: redis.Redis, settings: Settings) -> None:
    user = uuid.uuid4()
    charge_tokens(client, user, 5000, now=NOON)

    check_quota(client, user, "user", settings, now=MIDNIGHT)  # the next day: no exception

    assert tokens_used(client, user, now=MIDNIGHT) == 0
    assert tokens_used(client, user, now=NOON) == 5000


def test_a_days_counter_expires_after_its_midnight(client: redis.Redis) -> None:
    user = uuid.uuid4()
    now = datetime.now(UTC)

    charge_tokens(client, user, 10, now=now)

    ttl = cast(int, client.ttl(quota_key(user, now)))
    until_midnight = (next_reset(now) - now).total_seconds()
    assert until_midnight < ttl <= until_midnight + 3600 + 1


def test_a_job_is_charged_once(client: redis.Redis) -> None:
    user, job = uuid.uuid4(), uuid.uuid4()

    first = charge_tokens(client, user, 120, job_id=job, now=NOON)
    again = charge_tokens(client, user, 120, job_id=job, now=NOON)
    other = charge_tokens(client, user, 30, job_id=uuid.uuid4(), now=NOON)

    assert (first, again, other) == (120, 120, 150)


def test_nothing_to_charge_leaves_no_counter(client: redis.Redis) -> None:
    user = uuid.uuid4()

    assert charge_tokens(client, user, 0, job_id=uuid.uuid4(), now=NOON) == 0

    assert client.exists(quota_key(user, NOON)) == 0


@pytest.mark.parametrize(
    ("usage", "tokens"),
    [
        ({"prompt_tokens": 70, "completion_tokens": 30, "total_tokens": 100}, 100),
        ({"prompt_tokens": 70, "completion_tokens": 30}, 100),
        (None, 0),
        ({}, 0),
    ],
    ids=["total", "parts", "none", "empty"],
)
def test_usage_tokens(usage: dict[str, int] | None, tokens: int) -> None:
    assert usage_tokens(usage) == tokens


def test_without_redis_the_check_lets_the_job_through(settings: Settings) -> None:
    unreachable = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)

    check_quota(unreachable, uuid.uuid4(), "guest", settings)  # no exception

    with pytest.raises(redis.ConnectionError):
        charge_tokens(unreachable, uuid.uuid4(), 10)  # the worker logs a lost charge
