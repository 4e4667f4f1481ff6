"""JWT set-up and the small auth helpers: require_access_token(), require_admin(), ..."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from flask import Flask, Response
from flask_jwt_extended import (
    JWTManager,
    create_access_token,
    create_refresh_token,
    get_jwt,
    get_jwt_identity,
    verify_jwt_in_request,
)
from flask_openapi3 import APIBlueprint, Tag
from flask_openapi3.types import SecuritySchemesDict

from common.errors import Forbidden, InvalidToken, TokenExpired, Unauthorized
from common.models import Role, User
from common.settings import Settings
from web.problems import error_problem

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
SECURITY_SCHEMES: SecuritySchemesDict = {
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
}


def issue_tokens(user: User, settings: Settings, with_refresh: bool = True) -> dict[str, Any]:
    """Access (and refresh) tokens for the user; `sub` is the user id, `role` a claim."""
    claims = {"role": user.role}
    body: dict[str, Any] = {
        "access_token": create_access_token(str(user.id), additional_claims=claims),
        "token_type": "Bearer",
        "expires_in": settings.access_token_minutes * 60,
    }
    if with_refresh:
        body["refresh_token"] = create_refresh_token(str(user.id), additional_claims=claims)
    return body


def current_user_id() -> uuid.UUID:
    """The authenticated user's id (call after one of the require_* helpers)."""
    return uuid.UUID(str(get_jwt_identity()))


def require_access_token() -> None:
    """Reject the request unless it carries a valid access token (a hook or a view's first line)."""
    verify_jwt_in_request()


def require_refresh_token() -> None:
    """Reject the request unless it carries a valid refresh token (a view's first line)."""
    verify_jwt_in_request(refresh=True)


def require_admin() -> None:
    """Reject the request unless it carries an admin's access token (a before_request hook)."""
    require_access_token()
    if get_jwt().get("role") != Role.ADMIN.value:
        raise Forbidden("this endpoint is for administrators")


# flask-jwt-extended calls these from its own error handlers, where raising would be a 500,
# so they return the response our handler builds for the matching error class.
_CHALLENGE = "Bearer"
_BAD_TOKEN_CHALLENGE = 'Bearer error="invalid_token"'


def _unauthorized(reason: str) -> Response:
    return error_problem(Unauthorized(reason, challenge=_CHALLENGE))


def _invalid_token(reason: str) -> Response:
    return error_problem(InvalidToken(reason, challenge=_BAD_TOKEN_CHALLENGE))


def _expired(_header: dict[str, Any], payload: dict[str, Any]) -> Response:
    kind = payload.get("type", "access")
    detail = f"the {kind} token has expired"
    return error_problem(TokenExpired(detail, challenge=_BAD_TOKEN_CHALLENGE))


def _token_rejected(_header: dict[str, Any], payload: dict[str, Any]) -> Response:
    kind = payload.get("type", "different")
    return error_problem(InvalidToken(f"a {kind} token cannot be used here"))


def init_app(app: Flask, settings: Settings) -> None:
    """Configure flask-jwt-extended with problem+json error responses."""
    app.config.update(
        JWT_SECRET_KEY=settings.jwt_secret(),
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(minutes=settings.access_token_minutes),
        JWT_REFRESH_TOKEN_EXPIRES=timedelta(days=settings.refresh_token_days),
        JWT_TOKEN_LOCATION=["headers"],
        JWT_ERROR_MESSAGE_KEY="detail",
    )
    jwt = JWTManager(app)
    jwt.unauthorized_loader(_unauthorized)
    jwt.invalid_token_loader(_invalid_token)
    jwt.expired_token_loader(_expired)
    jwt.revoked_token_loader(_token_rejected)
    jwt.needs_fresh_token_loader(_token_rejected)
    jwt.user_lookup_error_loader(_token_rejected)


def admin_blueprint(name: str, import_name: str) -> APIBlueprint:
    """A blueprint under /v1/admin whose every route is for administrators only."""
    bp = APIBlueprint(
        name, import_name, url_prefix="/v1/admin", abp_tags=[Tag(name="admin")], abp_security=BEARER
    )
    # Check the role before flask-openapi3 validates anything: others get 401/403, not 422.
    bp.before_request(require_admin)
    return bp
