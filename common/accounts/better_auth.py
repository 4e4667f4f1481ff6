"""Better Auth JWTs: the site's own sign-in, verified with the keys its JWKS endpoint publishes."""

from __future__ import annotations

import logging
from typing import Any

from jwt import PyJWKClient
from jwt.exceptions import PyJWKClientConnectionError, PyJWKClientError, PyJWKSetError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common.platform.errors import AuthProviderUnavailable, InvalidToken
from common.platform.models import Role, User
from common.platform.settings import Settings

log = logging.getLogger(__name__)
PROVIDER = "better-auth"
FETCH_TIMEOUT_SECONDS = 5.0
# An unknown kid refetches the key set at most this often, so made-up kids cannot flood it.
MAX_REFETCH_COOLDOWN_SECONDS = 30.0
_MAX_SUBJECT_CHARS = 255


def better_auth_enabled(settings: Settings) -> bool:
    """Whether the API also accepts Better Auth tokens (all three settings are needed)."""
    configured = [
        settings.better_auth_jwks_url,
        settings.better_auth_issuer,
        settings.better_auth_audience,
    ]
    if any(configured) and not all(configured):
        raise ValueError(
            "BETTER_AUTH_JWKS_URL, BETTER_AUTH_ISSUER and BETTER_AUTH_AUDIENCE go together"
        )
    return all(configured)


class JwksKeys:
    """Better Auth's public keys, cached; an unknown kid refetches them (once per cooldown)."""

    def __init__(self, url: str, cache_seconds: int) -> None:
        self._client = PyJWKClient(
            url,
            cache_jwk_set=cache_seconds > 0,
            lifespan=max(cache_seconds, 1),
            timeout=FETCH_TIMEOUT_SECONDS,
            cooldown_duration=min(float(cache_seconds), MAX_REFETCH_COOLDOWN_SECONDS),
        )

    def key_for(self, kid: str) -> Any:
        """The public key with this kid: InvalidToken if unknown, 503 if the set is unreachable."""
        try:
            return self._client.get_signing_key(kid).key
        except (PyJWKClientConnectionError, PyJWKSetError) as exc:
            log.warning("Better Auth JWKS unavailable: %s", exc)
            raise AuthProviderUnavailable("the sign-in provider's keys cannot be fetched") from exc
        except PyJWKClientError as exc:
            raise InvalidToken("the token is signed with an unknown key") from exc


def check_claims(claims: dict[str, Any], settings: Settings) -> None:
    """Refuse a verified Better Auth token from another issuer, for another audience."""
    if claims.get("iss") != settings.better_auth_issuer:
        raise InvalidToken("the token comes from an unexpected issuer")
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or settings.better_auth_audience not in audiences:
        raise InvalidToken("the token is meant for another audience")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 0 < len(subject) <= _MAX_SUBJECT_CHARS:
        raise InvalidToken("the token's subject is malformed")


def find_or_provision(session: Session, claims: dict[str, Any]) -> User:
    """The local user for a Better Auth subject, created on first sight (always role user)."""
    subject = str(claims["sub"])
    user = _find(session, subject)
    if user is not None:
        return user
    user = User(
        auth_provider=PROVIDER,
        external_id=subject,
        email=_unclaimed_email(session, claims.get("email")),
        name=_short(claims.get("name"), 200),
        role=Role.USER.value,
    )
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        # Another request provisioned the same subject first.
        found = _find(session, subject)
        if found is None:
            raise
        return found
    return user


def _find(session: Session, subject: str) -> User | None:
    return session.scalar(
        select(User).where(User.auth_provider == PROVIDER, User.external_id == subject)
    )


def _unclaimed_email(session: Session, email: Any) -> str | None:
    # An address already used by another account is not taken over: it stays with its owner.
    if not isinstance(email, str) or not 0 < len(email) <= 320:
        return None
    email = email.strip().lower()
    taken = session.scalar(select(User.id).where(User.email == email))
    return None if taken is not None else email


def _short(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None
