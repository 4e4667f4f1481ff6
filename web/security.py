"""JWT set-up and the small auth helpers: require_access_token(), require_admin(), ..."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from flask import Flask, Response, current_app, request
from flask_jwt_extended import (
    JWTManager,
    create_access_token,
    create_refresh_token,
    get_current_user,
    get_jwt,
    verify_jwt_in_request,
)
from flask_openapi3 import APIBlueprint, Tag
from flask_openapi3.types import SecuritySchemesDict

from common.accounts import refresh_tokens
from common.accounts.account_facts import AccountFacts
from common.accounts.better_auth import (
    JwksKeys,
    better_auth_enabled,
    check_claims,
    find_or_provision,
)
from common.platform.errors import Forbidden, InvalidToken, TokenExpired, Unauthorized
from common.platform.models import Role, User
from common.platform.settings import Settings
from web.access_tokens import presented_token, verify_access_token
from web.problems import error_problem
from web.resources import db, resources

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
SECURITY_SCHEMES: SecuritySchemesDict = {
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
}
OUR_ALGORITHM = "HS256"
_JWKS = "bookchat_better_auth_jwks"
_CHALLENGE = "Bearer"
_BAD_TOKEN_CHALLENGE = 'Bearer error="invalid_token"'


def _refused(detail: str) -> InvalidToken:
    return InvalidToken(detail, challenge=_BAD_TOKEN_CHALLENGE)


def _token_body(user: User, family: str, refresh_jti: str | None) -> dict[str, Any]:
    settings = resources().settings
    claims = {"role": user.role, "fam": family}
    minutes = settings.access_token_minutes
    if user.role == Role.GUEST.value:
        minutes = settings.guest_token_minutes
    access = create_access_token(
        str(user.id), additional_claims=claims, expires_delta=timedelta(minutes=minutes)
    )
    body: dict[str, Any] = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": minutes * 60,
    }
    if refresh_jti is not None:
        body["refresh_token"] = create_refresh_token(
            str(user.id), additional_claims={**claims, "jti": refresh_jti}
        )
    return body


def _refresh_seconds() -> int:
    return resources().settings.refresh_token_days * 86400


def issue_tokens(user: User) -> dict[str, Any]:
    """A new sign-in: access and refresh tokens of a new family (access only for a guest)."""
    family = uuid.uuid4().hex
    if user.role == Role.GUEST.value:
        ttl = resources().settings.guest_token_minutes * 60
        refresh_tokens.start_family(resources().redis, family, refresh_tokens.NO_REFRESH, ttl)
        return _token_body(user, family, None)
    refresh_jti = uuid.uuid4().hex
    refresh_tokens.start_family(resources().redis, family, refresh_jti, _refresh_seconds())
    return _token_body(user, family, refresh_jti)


def rotate_tokens(user: User) -> dict[str, Any]:
    """Trade the presented refresh token for new tokens; a replayed one revokes its family."""
    claims = token_claims()
    family, presented = claims.get("fam"), claims.get("jti")
    if not isinstance(family, str) or not isinstance(presented, str):
        raise _refused("the refresh token belongs to no session")
    new_jti = uuid.uuid4().hex
    outcome = refresh_tokens.rotate_family(
        resources().redis, family, presented, new_jti, _refresh_seconds()
    )
    if outcome is refresh_tokens.Rotation.REUSED:
        raise _refused("the refresh token was already used; the session is revoked")
    if outcome is refresh_tokens.Rotation.UNKNOWN:
        raise _refused("the session has ended; sign in again")
    return _token_body(user, family, new_jti)


def token_claims() -> dict[str, Any]:
    """The verified claims of the request's token (access or refresh); {} when none was."""
    verified = presented_token()
    if verified is not None:
        return verified.claims
    try:
        return get_jwt()
    except RuntimeError:  # no token was verified in this request
        return {}


def revoke_current_token() -> None:
    """Refuse the presented token from now on, with every token of its family."""
    claims = token_claims()
    client = resources().redis
    if isinstance(jti := claims.get("jti"), str) and isinstance(exp := claims.get("exp"), int):
        refresh_tokens.block_token(client, jti, exp)
    if isinstance(family := claims.get("fam"), str):
        refresh_tokens.revoke_family(client, family)


def current_account() -> AccountFacts:
    """The authenticated account's id, role and email, without a query (after require_*)."""
    verified = presented_token()
    if verified is not None:
        return verified.account
    return AccountFacts.of(current_user())  # a refresh token's user row


def current_user() -> User:
    """The authenticated user's row, read once per request (call after a require_* helper)."""
    verified = presented_token()
    if verified is None:
        user: User = get_current_user()
        return user
    found = db().get(User, verified.account.id)
    if found is None:
        raise _refused("the account no longer exists")
    return found


def current_user_id() -> uuid.UUID:
    """The authenticated user's local id, for our tokens and Better Auth's alike."""
    return current_account().id


def require_access_token() -> None:
    """Reject the request unless it carries a valid access token (a hook or a view's first line).

    One decode and one Redis round trip (web/access_tokens.py); CORS preflights pass, as
    flask-jwt-extended lets them.
    """
    if request.method == "OPTIONS" or presented_token() is not None:
        return
    verify_access_token(_decode_key, _check_claims)


def optional_access_token() -> User | None:
    """The user of the access token the request carries, if any (a bad token is still a 401)."""
    if not request.headers.get("Authorization", "").strip().strip(","):
        return None
    require_access_token()
    return current_user()


def require_refresh_token() -> None:
    """Reject the request unless it carries a valid refresh token (a view's first line)."""
    verify_jwt_in_request(refresh=True)


def require_role(*roles: Role) -> None:
    """Reject the request unless its user has one of these roles (the account's, not a claim)."""
    require_access_token()
    if current_account().role not in {role.value for role in roles}:
        raise Forbidden("your account cannot use this endpoint")


def require_user() -> None:
    """Reject guests: signed-up users and admins only (a before_request hook or a first line)."""
    require_role(Role.USER, Role.ADMIN)


def require_admin() -> None:
    """Reject the request unless it carries an admin's access token (a before_request hook)."""
    require_access_token()
    if current_account().role != Role.ADMIN.value:
        raise Forbidden("this endpoint is for administrators")


def _decode_key(header: dict[str, Any], _claims: dict[str, Any]) -> Any:
    # Pick the key from the header, and tie it to one algorithm family: our HS256 secret for
    # our tokens (no kid), a JWKS public key for Better Auth's (kid), never the other way.
    kid, algorithm = header.get("kid"), header.get("alg")
    if kid is None:
        if algorithm != OUR_ALGORITHM:
            raise _refused("the token's algorithm is not accepted")
        return current_app.config["JWT_SECRET_KEY"]
    keys: JwksKeys | None = current_app.extensions.get(_JWKS)
    accepted = resources().settings.better_auth_algorithms
    if keys is None or not isinstance(kid, str) or algorithm not in accepted:
        raise _refused("the token's key or algorithm is not accepted")
    return keys.key_for(kid)


def _is_revoked(header: dict[str, Any], payload: dict[str, Any]) -> bool:
    jti = payload.get("jti")
    family = payload.get("fam") if "kid" not in header else None
    return refresh_tokens.is_revoked(
        resources().redis,
        jti if isinstance(jti, str) else None,
        family if isinstance(family, str) else None,
    )


def _check_claims(header: dict[str, Any], payload: dict[str, Any]) -> bool:
    if "exp" not in payload:
        raise _refused("the token has no expiry")
    if "kid" in header:
        check_claims(payload, resources().settings)
        return True
    try:
        uuid.UUID(str(payload.get("sub")))
    except ValueError:
        raise _refused("the token's subject is malformed") from None
    # Revocation works by token id and by sign-in family: a token without either could never
    # be revoked, so none is accepted (ours always carry both).
    if not _is_id(payload.get("jti")) or not _is_id(payload.get("fam")):
        raise _refused("the token has no id or no session family")
    return True


def _is_id(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _load_user(header: dict[str, Any], payload: dict[str, Any]) -> User | None:
    if "kid" in header:
        return find_or_provision(db(), payload)
    return db().get(User, uuid.UUID(str(payload["sub"])))


# flask-jwt-extended calls these from its own error handlers, where raising would be a 500,
# so they return the response our handler builds for the matching error class.
def _unauthorized(reason: str) -> Response:
    return error_problem(Unauthorized(reason, challenge=_CHALLENGE))


def _invalid_token(reason: str) -> Response:
    return error_problem(_refused(reason))


def _expired(_header: dict[str, Any], payload: dict[str, Any]) -> Response:
    kind = payload.get("type", "access")
    return error_problem(
        TokenExpired(f"the {kind} token has expired", challenge=_BAD_TOKEN_CHALLENGE)
    )


def _revoked(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
    return error_problem(_refused("the token has been revoked"))


def _wrong_kind(_header: dict[str, Any], payload: dict[str, Any]) -> Response:
    kind = payload.get("type", "different")
    return error_problem(InvalidToken(f"a {kind} token cannot be used here"))


def _unknown_user(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
    return error_problem(_refused("the account no longer exists"))


def _claims_refused(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
    return error_problem(_refused("the token's claims are not accepted"))


def init_app(app: Flask, settings: Settings) -> None:
    """Configure flask-jwt-extended: our tokens, Better Auth's when set, problem+json errors."""
    algorithms = [OUR_ALGORITHM]
    if better_auth_enabled(settings):
        algorithms += [a for a in settings.better_auth_algorithms if not a.startswith("HS")]
        assert settings.better_auth_jwks_url is not None  # better_auth_enabled checked it
        app.extensions[_JWKS] = JwksKeys(
            settings.better_auth_jwks_url, settings.better_auth_jwks_cache_seconds
        )
    app.config.update(
        JWT_SECRET_KEY=settings.jwt_secret(),
        JWT_ALGORITHM=OUR_ALGORITHM,
        JWT_DECODE_ALGORITHMS=algorithms,
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(minutes=settings.access_token_minutes),
        JWT_REFRESH_TOKEN_EXPIRES=timedelta(days=settings.refresh_token_days),
        JWT_TOKEN_LOCATION=["headers"],
        JWT_ERROR_MESSAGE_KEY="detail",
    )
    jwt = JWTManager(app)
    jwt.decode_key_loader(_decode_key)
    jwt.token_in_blocklist_loader(_is_revoked)
    jwt.token_verification_loader(_check_claims)
    jwt.user_lookup_loader(_load_user)
    jwt.unauthorized_loader(_unauthorized)
    jwt.invalid_token_loader(_invalid_token)
    jwt.expired_token_loader(_expired)
    jwt.revoked_token_loader(_revoked)
    jwt.needs_fresh_token_loader(_wrong_kind)
    jwt.user_lookup_error_loader(_unknown_user)
    jwt.token_verification_failed_loader(_claims_refused)


def admin_blueprint(name: str, import_name: str) -> APIBlueprint:
    """A blueprint under /v1/admin whose every route is for administrators only."""
    bp = APIBlueprint(
        name, import_name, url_prefix="/v1/admin", abp_tags=[Tag(name="admin")], abp_security=BEARER
    )
    # Check the role before flask-openapi3 validates anything: others get 401/403, not 422.
    bp.before_request(require_admin)
    return bp
