"""Refresh-token families and the access-token blocklist, in Redis.

A sign-in starts a family: its key holds the jti of the one refresh token that may be used next.
Rotating swaps it for the new token's jti; presenting any other jti of the family means an old
token was replayed, so the whole family is revoked. Access tokens carry the family id too, so a
revoked family takes its access tokens with it. A token without a jti or a family could never
be revoked, so web/security.py refuses those.
"""

from __future__ import annotations

import enum
import math
import time
from typing import Any, cast

import redis

# Stored as a family's current jti when it has no refresh token (guests).
NO_REFRESH = "-"

# KEYS: family. ARGV: presented jti, new jti, ttl seconds.
# Returns 1 rotated, 0 family unknown (ended or revoked), -1 replayed (family now revoked).
_ROTATE = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
if current ~= ARGV[1] then
  redis.call('DEL', KEYS[1])
  return -1
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


class Rotation(enum.Enum):
    ROTATED = 1
    UNKNOWN = 0
    REUSED = -1


def family_key(family_id: str) -> str:
    """Redis key holding the family's current refresh jti."""
    return f"bookchat:auth:family:{family_id}"


def blocked_key(jti: str) -> str:
    """Redis key marking one token as revoked until it would have expired anyway."""
    return f"bookchat:auth:blocked:{jti}"


def start_family(client: redis.Redis, family_id: str, refresh_jti: str, ttl_seconds: int) -> None:
    """Record a new family whose next refresh token is `refresh_jti`."""
    client.set(family_key(family_id), refresh_jti, ex=max(1, ttl_seconds))


def rotate_family(
    client: redis.Redis, family_id: str, presented_jti: str, new_jti: str, ttl_seconds: int
) -> Rotation:
    """Atomically replace the family's refresh jti, or revoke the family on reuse."""
    script: Any = client.register_script(_ROTATE)
    outcome = script(keys=[family_key(family_id)], args=[presented_jti, new_jti, ttl_seconds])
    return Rotation(int(outcome))


def revoke_family(client: redis.Redis, family_id: str) -> None:
    """End the family: its refresh and access tokens are refused from now on."""
    client.delete(family_key(family_id))


def block_token(client: redis.Redis, jti: str, expires_at: float) -> None:
    """Refuse this token until its `exp` (epoch seconds); nothing to store if already expired."""
    remaining = math.ceil(expires_at - time.time())
    if remaining > 0:
        client.set(blocked_key(jti), "1", ex=remaining)


def is_revoked(client: redis.Redis, jti: str | None, family_id: str | None) -> bool:
    """Whether the token is blocklisted or its family has ended (one round trip)."""
    keys = []
    if jti:
        keys.append(blocked_key(jti))
    if family_id:
        keys.append(family_key(family_id))
    if not keys:
        return False
    values = cast(list[str | None], client.mget(keys))
    blocked = values[0] is not None if jti else False
    family_gone = values[-1] is None if family_id else False
    return bool(blocked or family_gone)
