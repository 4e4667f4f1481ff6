"""Refresh-token families and the blocklist against a real Redis."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import cast

import pytest
import redis

from common.accounts import refresh_tokens
from common.accounts.refresh_tokens import Rotation


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[redis.Redis]:
    """A redis_db of the session's Redis (keys are unique per test)."""
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


def _ttl(redis_db: redis.Redis, key: str) -> int:
    return cast(int, redis_db.ttl(key))


def _ids() -> tuple[str, str, str]:
    return uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex


def test_rotation_moves_the_family_to_the_new_jti(redis_db: redis.Redis) -> None:
    family, first, second = _ids()
    refresh_tokens.start_family(redis_db, family, first, 60)

    assert refresh_tokens.rotate_family(redis_db, family, first, second, 60) is Rotation.ROTATED
    assert redis_db.get(refresh_tokens.family_key(family)) == second
    assert 0 < _ttl(redis_db, refresh_tokens.family_key(family)) <= 60
    assert not refresh_tokens.is_revoked(redis_db, uuid.uuid4().hex, family)


def test_a_reused_jti_revokes_the_family(redis_db: redis.Redis) -> None:
    family, first, second = _ids()
    refresh_tokens.start_family(redis_db, family, first, 60)
    refresh_tokens.rotate_family(redis_db, family, first, second, 60)

    assert refresh_tokens.rotate_family(redis_db, family, first, "third", 60) is Rotation.REUSED
    assert refresh_tokens.is_revoked(redis_db, None, family)
    assert refresh_tokens.rotate_family(redis_db, family, second, "fourth", 60) is Rotation.UNKNOWN


def test_an_unknown_family_does_not_rotate(redis_db: redis.Redis) -> None:
    family, first, second = _ids()

    assert refresh_tokens.rotate_family(redis_db, family, first, second, 60) is Rotation.UNKNOWN
    assert not redis_db.exists(refresh_tokens.family_key(family))


def test_a_blocked_token_expires_with_the_token(redis_db: redis.Redis) -> None:
    jti = uuid.uuid4().hex
    refresh_tokens.block_token(redis_db, jti, time.time() + 30)

    assert refresh_tokens.is_revoked(redis_db, jti, None)
    assert 0 < _ttl(redis_db, refresh_tokens.blocked_key(jti)) <= 31


def test_an_expired_token_needs_no_block(redis_db: redis.Redis) -> None:
    jti = uuid.uuid4().hex
    refresh_tokens.block_token(redis_db, jti, time.time() - 5)

    assert not redis_db.exists(refresh_tokens.blocked_key(jti))


def test_revoking_a_family_revokes_its_tokens(redis_db: redis.Redis) -> None:
    family, first, _ = _ids()
    refresh_tokens.start_family(redis_db, family, first, 60)
    assert not refresh_tokens.is_revoked(redis_db, first, family)

    refresh_tokens.revoke_family(redis_db, family)

    assert refresh_tokens.is_revoked(redis_db, first, family)


def test_a_token_without_jti_or_family_is_not_revoked(redis_db: redis.Redis) -> None:
    assert not refresh_tokens.is_revoked(redis_db, None, None)
