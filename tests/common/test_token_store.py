"""Refresh-token families and the blocklist against a real Redis."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import cast

import pytest
import redis

from common import token_store
from common.token_store import Rotation


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the session's Redis (keys are unique per test)."""
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


def _ttl(client: redis.Redis, key: str) -> int:
    return cast(int, client.ttl(key))


def _ids() -> tuple[str, str, str]:
    return uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex


def test_rotation_moves_the_family_to_the_new_jti(client: redis.Redis) -> None:
    family, first, second = _ids()
    token_store.start_family(client, family, first, 60)

    assert token_store.rotate_family(client, family, first, second, 60) is Rotation.ROTATED
    assert client.get(token_store.family_key(family)) == second
    assert 0 < _ttl(client, token_store.family_key(family)) <= 60
    assert not token_store.is_revoked(client, uuid.uuid4().hex, family)


def test_a_reused_jti_revokes_the_family(client: redis.Redis) -> None:
    family, first, second = _ids()
    token_store.start_family(client, family, first, 60)
    token_store.rotate_family(client, family, first, second, 60)

    assert token_store.rotate_family(client, family, first, "third", 60) is Rotation.REUSED
    assert token_store.is_revoked(client, None, family)
    assert token_store.rotate_family(client, family, second, "fourth", 60) is Rotation.UNKNOWN


def test_an_unknown_family_does_not_rotate(client: redis.Redis) -> None:
    family, first, second = _ids()

    assert token_store.rotate_family(client, family, first, second, 60) is Rotation.UNKNOWN
    assert not client.exists(token_store.family_key(family))


def test_a_blocked_token_expires_with_the_token(client: redis.Redis) -> None:
    jti = uuid.uuid4().hex
    token_store.block_token(client, jti, time.time() + 30)

    assert token_store.is_revoked(client, jti, None)
    assert 0 < _ttl(client, token_store.blocked_key(jti)) <= 31


def test_an_expired_token_needs_no_block(client: redis.Redis) -> None:
    jti = uuid.uuid4().hex
    token_store.block_token(client, jti, time.time() - 5)

    assert not client.exists(token_store.blocked_key(jti))


def test_revoking_a_family_revokes_its_tokens(client: redis.Redis) -> None:
    family, first, _ = _ids()
    token_store.start_family(client, family, first, 60)
    assert not token_store.is_revoked(client, first, family)

    token_store.revoke_family(client, family)

    assert token_store.is_revoked(client, first, family)


def test_a_token_without_jti_or_family_is_not_revoked(client: redis.Redis) -> None:
    assert not token_store.is_revoked(client, None, None)
