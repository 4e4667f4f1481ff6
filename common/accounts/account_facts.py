"""What a request needs to know about its account (id, role, email), cached in Redis.

Every authenticated request used to read the user's row for its role. The facts are cached
under the account's id with the account's version, a counter that every change of role and
every deletion bumps (`account_changed`): an entry read under an older version is ignored, so
a demotion or a deletion counts on the very next request, in every process. The version is
bumped twice: before the change commits (if Redis cannot take it, the change is refused), and
after, so an entry cached from the old row between the two bumps is ignored too.

The request reads the entry and the version in the same MGET as the token's revocation
(web/access_tokens.py): the facts cost no extra round trip.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy.orm import Session

from common.platform.after_commit import enqueue_after_commit
from common.platform.models import User

log = logging.getLogger(__name__)
# An entry is read from the row again after five minutes: should both bumps of a change fail
# (Redis gone at the commit), a stale role lasts that long, not longer; it costs one row read per
# active account every five minutes. The version key stays (a deleted account's must).
FACTS_SECONDS = 300


@dataclass(frozen=True)
class AccountFacts:
    """The parts of a user's row that authorize and account for a request."""

    id: uuid.UUID
    role: str
    email: str | None
    external_id: str | None

    @classmethod
    def of(cls, user: User) -> AccountFacts:
        """The facts of a loaded row."""
        return cls(user.id, user.role, user.email, user.external_id)


def facts_key(user_id: uuid.UUID | str) -> str:
    """Redis key of the cached facts: JSON with the version they were read under."""
    return f"bookchat:account:{user_id}"


def version_key(user_id: uuid.UUID | str) -> str:
    """Redis key of the account's version, bumped on every change of role and on deletion."""
    return f"bookchat:account:{user_id}:version"


def cached_facts(raw: str | None, version: str | None) -> AccountFacts | None:
    """The facts of a cache entry, or None when absent or read under another version."""
    if raw is None:
        return None
    try:
        entry: dict[str, Any] = json.loads(raw)
        if entry["v"] != int(version or 0):
            return None
        return AccountFacts(uuid.UUID(entry["id"]), entry["role"], entry["email"], entry["ext"])
    except (ValueError, KeyError, TypeError):
        return None


def store_facts(client: redis.Redis, facts: AccountFacts, version: str | None) -> None:
    """Cache the facts read from the row under the version read before the row."""
    entry = {
        "v": int(version or 0),
        "id": str(facts.id),
        "role": facts.role,
        "email": facts.email,
        "ext": facts.external_id,
    }
    client.set(facts_key(facts.id), json.dumps(entry), ex=FACTS_SECONDS)


def bump_accounts(client: redis.Redis, user_ids: Iterable[uuid.UUID]) -> None:
    """Invalidate the cached facts of these accounts in every process (one round trip)."""
    pipe = client.pipeline(transaction=False)
    for user_id in user_ids:
        pipe.incr(version_key(user_id))
        pipe.delete(facts_key(user_id))
    pipe.execute()


def account_changed(session: Session, client: redis.Redis, user_ids: Iterable[uuid.UUID]) -> None:
    """Call before committing a change of role or a deletion: bump now and after the commit.

    A Redis error here propagates (the change is refused); one after the commit is logged.
    """
    ids = list(user_ids)
    if not ids:
        return
    bump_accounts(client, ids)

    def bump_again() -> None:
        try:
            bump_accounts(client, ids)
        except redis.RedisError:
            log.warning("could not bump the version of accounts %s after the commit", ids)

    enqueue_after_commit(session, bump_again)
