"""Access tokens checked with one decode and one Redis round trip per request.

flask-jwt-extended decodes a token twice (once unverified, to hand the claims to the key
loader, then verified) and parses its header twice more; then the blocklist is one round trip
and the user's row one query. Here the header is parsed once (our key choice needs only the
header), the token is decoded and verified once by PyJWT, and one MGET reads the token's
blocklist entry, its sign-in family, and the account's cached facts with their version
(common/accounts/account_facts.py). A cache miss reads the row and caches it.

A token of ours already verified in this process is not decoded again: its claims are kept,
keyed by the exact token, until its expiry (a forged or altered token is another key, and is
verified). Revocation and the account are still checked in Redis on every request. Better
Auth's tokens are verified every time (their keys can be rotated out).

The errors raised are flask-jwt-extended's and PyJWT's own classes, so its error handlers
(and our loaders in web/security.py) shape the same problem+json as before. Refresh tokens
still go through flask-jwt-extended (a refresh is rare).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import jwt
from flask import current_app, g, request
from flask_jwt_extended.exceptions import (
    InvalidHeaderError,
    NoAuthorizationError,
    RevokedTokenError,
    UserLookupError,
    WrongTokenError,
)
from jwt import DecodeError, ExpiredSignatureError
from jwt.types import Options
from redis.client import Pipeline

from common.accounts import account_facts, refresh_tokens
from common.accounts.account_facts import AccountFacts
from common.platform.models import User
from web.resources import db, resources

_G_KEY = "bookchat_access_token"
_VERIFIED = "bookchat.verified_tokens"  # app.extensions: one app's (one secret's) tokens
_VERIFIED_MAX = 10_000  # tokens of ours whose signature this process checked (a few MB)
Verified = dict[str, tuple[dict[str, Any], dict[str, Any]]]


def _verified() -> Verified:
    known: Verified = current_app.extensions.setdefault(_VERIFIED, {})
    return known


# Work that rides in the token check's round trip: given the verified claims, it queues
# commands on the pipeline and returns what to do with their replies (web/rate_limits.py
# queues the request's limit hits). Listed in app.extensions[AUTH_COMPANIONS].
AUTH_COMPANIONS = "bookchat.auth_companions"
AuthCompanion = Callable[[dict[str, Any], Pipeline], Callable[[list[Any]], None] | None]
KeyLoader = Callable[[dict[str, Any], dict[str, Any]], Any]
ClaimsCheck = Callable[[dict[str, Any], dict[str, Any]], bool]


@dataclass(frozen=True)
class VerifiedToken:
    """The request's verified access token and its account's facts."""

    header: dict[str, Any]
    claims: dict[str, Any]
    account: AccountFacts


def presented_token() -> VerifiedToken | None:
    """The token this request verified with `verify_access_token`, if it did."""
    return cast(VerifiedToken | None, g.get(_G_KEY))


def _bearer_token() -> str:
    # The same parsing, and the same messages, as flask-jwt-extended's header location.
    auth_header = request.headers.get("Authorization", "").strip().strip(",")
    if not auth_header:
        raise NoAuthorizationError("Missing Authorization Header")
    bearers = [s for s in re.split(r",\s*", auth_header) if s and s.split()[0] == "Bearer"]
    if len(bearers) != 1:
        raise NoAuthorizationError(
            "Missing 'Bearer' type in 'Authorization' header. "
            "Expected 'Authorization: Bearer <JWT>'"
        )
    parts = bearers[0].split()
    if len(parts) != 2:
        raise InvalidHeaderError("Bad Authorization header. Expected 'Authorization: Bearer <JWT>'")
    return parts[1]


def _header_of(token: str) -> dict[str, Any]:
    # Only the first segment: the key is chosen by the header, the claims are decoded once.
    segment = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise DecodeError(f"Invalid header padding: {exc}") from None
    if not isinstance(header, dict):
        raise DecodeError("Invalid header string: must be a json object")
    return header


def _decode(token: str, header: dict[str, Any], key_loader: KeyLoader) -> dict[str, Any]:
    key = key_loader(header, {})
    algorithms = current_app.config["JWT_DECODE_ALGORITHMS"]
    try:
        # The audience is Better Auth's to check (check_claims), as flask-jwt-extended left it.
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=algorithms, options={"verify_aud": False}
        )
    except ExpiredSignatureError as exc:
        # Only on this error path: the expired claims name the token's kind in the problem.
        setattr(exc, "jwt_header", header)  # noqa: B010 - the attribute flask-jwt-extended reads
        options: Options = {"verify_exp": False, "verify_aud": False}
        expired = jwt.decode(token, key, algorithms=algorithms, options=options)
        setattr(exc, "jwt_data", expired)  # noqa: B010
        raise
    if "sub" not in claims:
        raise DecodeError("Missing claim: sub")
    claims.setdefault("type", "access")
    claims.setdefault("fresh", False)
    claims.setdefault("jti", None)
    return claims


def _account(header: dict[str, Any], claims: dict[str, Any], values: list[Any]) -> AccountFacts:
    if "kid" in header:  # Better Auth's: found (or provisioned) by subject, not cached
        return AccountFacts.of(_provisioned(header, claims))
    user_id = uuid.UUID(str(claims["sub"]))
    raw, version = values[-2], values[-1]
    facts = account_facts.cached_facts(raw, version)
    if facts is not None:
        return facts
    user = db().get(User, user_id)
    if user is None:
        raise UserLookupError("the account no longer exists", header, claims)
    facts = AccountFacts.of(user)
    account_facts.store_facts(resources().redis, facts, version)
    return facts


def _provisioned(header: dict[str, Any], claims: dict[str, Any]) -> User:
    from common.accounts.better_auth import find_or_provision

    return find_or_provision(db(), claims)


def _now() -> float:
    return time.time()


def _verified_before(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    known = _verified().get(token)
    if known is None:
        return None
    header, claims = known
    if claims["exp"] <= _now():
        _verified().pop(token, None)
        expired = ExpiredSignatureError("Signature has expired")
        setattr(expired, "jwt_header", header)  # noqa: B010 - read by flask-jwt-extended
        setattr(expired, "jwt_data", claims)  # noqa: B010
        raise expired
    return header, dict(claims)


def _remember(token: str, header: dict[str, Any], claims: dict[str, Any]) -> None:
    if "kid" in header or not isinstance(claims.get("exp"), int | float):
        return
    verified = _verified()
    if len(verified) >= _VERIFIED_MAX:
        verified.clear()  # simpler than an LRU, and as safe: a miss only decodes again
    verified[token] = (header, dict(claims))


def _check_in_one_round_trip(keys: list[str], claims: dict[str, Any] | None) -> list[Any]:
    """MGET the token's and the account's keys, with what rides along (for `claims` of our
    tokens: a Better Auth subject is not the local id the limits are keyed by); the values."""
    pipe = resources().redis.pipeline(transaction=False)
    if keys:
        pipe.mget(keys)
    handlers = []
    for companion in current_app.extensions.get(AUTH_COMPANIONS, ()) if claims else ():
        start = len(pipe)
        handle = companion(claims, pipe)
        if handle is not None:
            handlers.append((start, len(pipe), handle))
    if not len(pipe):
        return []
    replies = pipe.execute(raise_on_error=False)
    if keys and isinstance(replies[0], Exception):
        raise replies[0]
    for start, end, handle in handlers:
        handle(replies[start:end])
    return cast(list[Any], replies[0]) if keys else []


def verify_access_token(key_loader: KeyLoader, claims_check: ClaimsCheck) -> VerifiedToken:
    """Verify the request's access token (raises flask-jwt-extended's and PyJWT's errors)."""
    token = _bearer_token()
    known = _verified_before(token)
    if known is not None:
        header, claims = known
    else:
        header = _header_of(token)
        claims = _decode(token, header, key_loader)
        if claims["type"] != "refresh":
            claims_check(header, claims)  # refuses ours without a jti or a family
            _remember(token, header, claims)
    if claims["type"] == "refresh":
        raise WrongTokenError("Only non-refresh tokens are allowed")
    jti = claims.get("jti")
    family = claims.get("fam") if "kid" not in header else None
    keys = []
    if isinstance(jti, str):
        keys.append(refresh_tokens.blocked_key(jti))
    if isinstance(family, str):
        keys.append(refresh_tokens.family_key(family))
    if "kid" not in header:
        keys += [account_facts.facts_key(claims["sub"]), account_facts.version_key(claims["sub"])]
    values = _check_in_one_round_trip(keys, claims if "kid" not in header else None)
    blocked = isinstance(jti, str) and values[0] is not None
    family_gone = isinstance(family, str) and values[1 if isinstance(jti, str) else 0] is None
    if blocked or family_gone:
        raise RevokedTokenError(header, claims)
    verified = VerifiedToken(header, claims, _account(header, claims, values))
    setattr(g, _G_KEY, verified)
    return verified
