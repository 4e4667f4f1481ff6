"""The account's cached facts against a real Redis: versions, bumps and how long an entry lives."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import cast

import pytest
import redis

from common.accounts.account_facts import (
    AccountFacts,
    bump_accounts,
    cached_facts,
    facts_key,
    store_facts,
    version_key,
)


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the session's Redis (keys are unique per test)."""
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


def _read(redis_db: redis.Redis, user_id: uuid.UUID) -> AccountFacts | None:
    raw, version = cast(list[str | None], redis_db.mget(facts_key(user_id), version_key(user_id)))
    return cached_facts(raw, version)


def test_a_bump_hides_the_entry_from_every_reader(redis_db: redis.Redis) -> None:
    facts = AccountFacts(uuid.uuid4(), "admin", "ops@example.com", None)
    store_facts(redis_db, facts, cast(str | None, redis_db.get(version_key(facts.id))))
    assert _read(redis_db, facts.id) == facts
    bump_accounts(redis_db, [facts.id])
    assert _read(redis_db, facts.id) is None
    # An entry stored from a row read before the bump carries the old version: ignored.
    store_facts(redis_db, facts, "0")
    assert _read(redis_db, facts.id) is None


def test_an_entry_is_read_from_the_row_again_within_minutes(redis_db: redis.Redis) -> None:
    """Should both bumps of a change be lost, a stale role lasts minutes, not a day."""
    facts = AccountFacts(uuid.uuid4(), "admin", None, "ext-1")
    store_facts(redis_db, facts, None)
    assert 0 < cast(int, redis_db.ttl(facts_key(facts.id))) <= 300
