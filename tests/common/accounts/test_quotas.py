"""Token quotas and the daily budget in a real Redis: identities, reserve, settle, release."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import cast

import pytest
import redis
from pydantic import SecretStr

from common.accounts.quotas import (
    BudgetExhausted,
    QuotaExceeded,
    Spender,
    budget_key,
    budget_used,
    charge_tokens,
    check_spend,
    next_reset,
    quota_key,
    spender_of,
    tokens_used,
    usage_tokens,
)
from common.accounts.token_reservations import (
    budget_allows,
    release_tokens,
    reserve_tokens,
    settle_tokens,
)
from common.platform.redis_client import make_redis
from common.platform.settings import Settings
from tests.support.stack import make_settings

# Noon tomorrow: a day's counter expires after its midnight, so the day must not be over yet.
NOON = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), time(12), tzinfo=UTC)
MIDNIGHT = next_reset(NOON)


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    """Quotas of 1000 tokens a day for users, 100 for guests, 300 per guest address; no budget."""
    return make_settings(
        tmp_path,
        redis_url,
        user_daily_tokens=1000,
        guest_daily_tokens=100,
        guest_address_daily_tokens=300,
    )


@pytest.fixture
def redis_db(settings: Settings) -> Iterator[redis.Redis]:
    """A redis_db like the app's on the shared test Redis (identities are fresh: keys never mix)."""
    made = make_redis(settings)
    yield made
    made.close()


def user(settings: Settings, email: str | None = None) -> Spender:
    """A reader with a fresh email address."""
    email = email or f"reader-{uuid.uuid4().hex[:10]}@example.com"
    return spender_of(settings, uuid.uuid4(), "user", email)


def identity(spender: Spender, n: int = 0) -> str:
    return spender.quotas[n][0]


def test_an_account_counts_under_its_email_not_its_row(settings: Settings) -> None:
    email = f"Returning-{uuid.uuid4().hex[:10]}@Example.com"
    first = spender_of(settings, uuid.uuid4(), "user", email)
    again = spender_of(settings, uuid.uuid4(), "user", email.lower())  # a new row, same person

    assert first == again
    assert email.lower() not in identity(first)  # the address is never stored in clear
    other_secret = settings.model_copy(update={"jwt_secret_key": SecretStr("another-" * 6)})
    assert identity(spender_of(other_secret, uuid.uuid4(), "user", email)) != identity(first)


def test_a_guest_counts_under_its_id_and_its_address(settings: Settings) -> None:
    one = spender_of(settings, uuid.uuid4(), "guest", None, address="10.9.0.1")
    two = spender_of(settings, uuid.uuid4(), "guest", None, address="10.9.0.1")

    assert identity(one, 0) != identity(two, 0)
    assert identity(one, 1) == identity(two, 1) and "10.9.0.1" not in identity(one, 1)
    assert [q for _, q in one.quotas] == [100, 300]
    assert spender_of(settings, uuid.uuid4(), "admin", "a@example.com").quotas == ()


def test_a_reservation_counts_until_it_is_settled_with_the_real_usage(
    redis_db: redis.Redis, settings: Settings
) -> None:
    reader, job = user(settings), uuid.uuid4()

    reserve_tokens(redis_db, job, reader, 600, settings, now=NOON)
    assert tokens_used(redis_db, identity(reader), NOON) == 600
    settle_tokens(redis_db, job, 240, now=NOON)
    assert tokens_used(redis_db, identity(reader), NOON) == 240
    settle_tokens(redis_db, job, 999, now=NOON)  # a task run twice settles once

    assert tokens_used(redis_db, identity(reader), NOON) == 240


def test_a_released_reservation_gives_everything_back(
    redis_db: redis.Redis, settings: Settings
) -> None:
    reader, job = user(settings), uuid.uuid4()
    charge_tokens(redis_db, reader, 100, now=NOON)
    reserve_tokens(redis_db, job, reader, 600, settings, now=NOON)

    release_tokens(redis_db, job)

    assert tokens_used(redis_db, identity(reader), NOON) == 100


def test_a_reservation_that_does_not_fit_is_refused_until_utc_midnight(
    redis_db: redis.Redis, settings: Settings
) -> None:
    reader = user(settings)
    reserve_tokens(redis_db, uuid.uuid4(), reader, 700, settings, now=NOON)

    with pytest.raises(QuotaExceeded) as refused:
        reserve_tokens(redis_db, uuid.uuid4(), reader, 301, settings, now=NOON)

    error = refused.value
    assert (error.status, error.code) == (429, "token_quota_exceeded")
    assert error.extensions["resets_at"] == MIDNIGHT.isoformat()
    assert error.extensions["used"] == 700 and error.extensions["quota"] == 1000
    assert error.extensions["needed"] == 301
    assert error.retry_after == 12 * 3600
    assert error.headers == {"Retry-After": str(12 * 3600)}
    assert tokens_used(redis_db, identity(reader), NOON) == 700  # a refusal reserves nothing
    reserve_tokens(redis_db, uuid.uuid4(), reader, 300, settings, now=NOON)  # exactly fits


def test_concurrent_reservations_never_pass_the_quota(
    redis_db: redis.Redis, settings: Settings
) -> None:
    reader, accepted, refused = user(settings), [], []
    start = threading.Barrier(20)

    def submit() -> None:
        own = make_redis(settings)
        start.wait()
        try:
            reserve_tokens(own, uuid.uuid4(), reader, 150, settings, now=NOON)
            accepted.append(1)
        except QuotaExceeded:
            refused.append(1)
        finally:
            own.close()

    threads = [threading.Thread(target=submit) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert (len(accepted), len(refused)) == (6, 14)  # 6 x 150 <= 1000 < 7 x 150
    assert tokens_used(redis_db, identity(reader), NOON) == 900


def test_new_guests_from_one_address_share_its_allowance(
    redis_db: redis.Redis, settings: Settings
) -> None:
    for _ in range(3):  # three guests of 100 use the address's 300
        guest = spender_of(settings, uuid.uuid4(), "guest", None, address="10.9.1.1")
        reserve_tokens(redis_db, uuid.uuid4(), guest, 100, settings, now=NOON)

    fresh = spender_of(settings, uuid.uuid4(), "guest", None, address="10.9.1.1")
    with pytest.raises(QuotaExceeded):
        reserve_tokens(redis_db, uuid.uuid4(), fresh, 1, settings, now=NOON)
    elsewhere = spender_of(settings, uuid.uuid4(), "guest", None, address="10.9.1.2")
    reserve_tokens(redis_db, uuid.uuid4(), elsewhere, 100, settings, now=NOON)


def test_the_budget_refuses_everyone_with_503_until_midnight(
    redis_db: redis.Redis, settings: Settings
) -> None:
    day = datetime.combine(NOON.date() + timedelta(days=1), time(18), tzinfo=UTC)  # a clean day
    budgeted = settings.model_copy(update={"llm_daily_token_budget": 1000})
    admin = spender_of(budgeted, uuid.uuid4(), "admin", "boss@example.com")
    reserve_tokens(redis_db, uuid.uuid4(), admin, 900, budgeted, now=day)  # admins count too

    with pytest.raises(BudgetExhausted) as refused:
        reserve_tokens(redis_db, uuid.uuid4(), user(budgeted), 101, budgeted, now=day)

    error = refused.value
    assert (error.status, error.code) == (503, "budget_exhausted")
    assert error.headers == {"Retry-After": str(6 * 3600)}
    assert error.extensions["resets_at"] == next_reset(day).isoformat()
    assert budget_used(redis_db, day) == 900
    redis_db.delete(budget_key(day))


def test_the_worker_asks_the_budget_before_calling_the_model(
    redis_db: redis.Redis, settings: Settings
) -> None:
    day = datetime.combine(NOON.date() + timedelta(days=2), time(6), tzinfo=UTC)
    budgeted = settings.model_copy(update={"llm_daily_token_budget": 1000})
    held, unreserved = uuid.uuid4(), uuid.uuid4()
    reserve_tokens(redis_db, held, user(budgeted), 1000, budgeted, now=day)

    assert budget_allows(redis_db, held, 1000, day)  # its own reservation filled the day
    assert not budget_allows(redis_db, unreserved, 1000, day)
    redis_db.incrby(budget_key(day), 1)  # spent past the budget (a lowered budget, a big answer)
    assert not budget_allows(redis_db, held, 1000, day)
    assert budget_allows(redis_db, held, 0, day)  # no budget configured
    redis_db.delete(budget_key(day))


def test_check_spend_refuses_a_used_up_quota_and_reserves_nothing(
    redis_db: redis.Redis, settings: Settings
) -> None:
    reader = user(settings)
    charge_tokens(redis_db, reader, 999, now=NOON)
    check_spend(redis_db, reader, settings, now=NOON)  # one token left: yes

    charge_tokens(redis_db, reader, 1, now=NOON)
    with pytest.raises(QuotaExceeded):
        check_spend(redis_db, reader, settings, now=NOON)
    assert tokens_used(redis_db, identity(reader), NOON) == 1000


def test_a_job_without_a_reservation_is_charged_once_on_its_fallback(
    redis_db: redis.Redis, settings: Settings
) -> None:
    reader, job = user(settings), uuid.uuid4()

    settle_tokens(redis_db, job, 120, fallback=reader, now=NOON)
    settle_tokens(redis_db, job, 120, fallback=reader, now=NOON)

    assert tokens_used(redis_db, identity(reader), NOON) == 120


def test_admins_and_a_zero_quota_are_never_refused(
    redis_db: redis.Redis, settings: Settings
) -> None:
    unlimited = settings.model_copy(update={"user_daily_tokens": 0})
    reader = user(unlimited)

    reserve_tokens(redis_db, uuid.uuid4(), reader, 10**9, unlimited, now=NOON)
    admin = spender_of(settings, uuid.uuid4(), "admin", "root@example.com")
    reserve_tokens(redis_db, uuid.uuid4(), admin, 10**9, settings, now=NOON)


def test_a_new_utc_day_starts_from_zero_and_old_days_expire(
    redis_db: redis.Redis, settings: Settings
) -> None:
    reader = user(settings)
    now = datetime.now(UTC)
    charge_tokens(redis_db, reader, 1000, now=NOON)

    reserve_tokens(redis_db, uuid.uuid4(), reader, 1000, settings, now=MIDNIGHT)  # the next day

    charge_tokens(redis_db, reader, 10, now=now)
    ttl = cast(int, redis_db.ttl(quota_key(identity(reader), now)))
    until_midnight = (next_reset(now) - now).total_seconds()
    assert until_midnight < ttl <= until_midnight + 86400 + 1


def test_settling_after_the_day_expired_revives_no_counter(
    redis_db: redis.Redis, settings: Settings
) -> None:
    reader, job = user(settings), uuid.uuid4()
    reserve_tokens(redis_db, job, reader, 500, settings, now=NOON)
    redis_db.delete(quota_key(identity(reader), NOON))  # the day's counter has expired

    settle_tokens(redis_db, job, 100)

    assert redis_db.exists(quota_key(identity(reader), NOON)) == 0


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
