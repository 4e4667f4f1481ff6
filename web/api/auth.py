"""Accounts: sign up, log in, refresh, and who am I."""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3 import APIBlueprint, Tag
from flask_openapi3.types import ResponseDict

from common.accounts import authenticate, create_user, get_user, signup_role
from common.errors import Unauthorized
from common.models import User
from common.schemas import LoginRequest, Problem, SignupRequest, TokenResponse, UserOut
from web.resources import db, resources
from web.security import (
    BEARER,
    current_user_id,
    issue_tokens,
    require_access_token,
    require_refresh_token,
)

bp = APIBlueprint("auth", __name__, url_prefix="/v1", abp_tags=[Tag(name="accounts")])
_ERRORS: ResponseDict = {401: Problem, 409: Problem, 422: Problem, 503: Problem}


def _user_out(user: User) -> dict[str, object]:
    return UserOut.model_validate(user, from_attributes=True).model_dump(mode="json")


@bp.post("/auth/signup", responses={201: TokenResponse, **_ERRORS})
def signup(body: SignupRequest) -> tuple[Response, int]:
    """Create an account and return its tokens."""
    settings = resources().settings
    role = signup_role(settings, body.email)
    user = create_user(db(), body.email, body.password, body.name, role)
    db().commit()
    return jsonify({**issue_tokens(user, settings), "user": _user_out(user)}), 201


@bp.post("/auth/login", responses={200: TokenResponse, **_ERRORS})
def login(body: LoginRequest) -> Response:
    """Exchange email and password for tokens."""
    user = authenticate(db(), body.email, body.password)
    return jsonify(issue_tokens(user, resources().settings))


@bp.post(
    "/auth/refresh", responses={200: TokenResponse, 401: Problem, 503: Problem}, security=BEARER
)
def refresh() -> Response:
    """Exchange a refresh token for a new access token."""
    require_refresh_token()
    user = db().get(User, current_user_id())
    if user is None:
        raise Unauthorized("the account no longer exists")
    return jsonify(issue_tokens(user, resources().settings, with_refresh=False))


@bp.get("/me", responses={200: UserOut, 401: Problem, 503: Problem}, security=BEARER)
def me() -> Response:
    """The authenticated user."""
    require_access_token()
    return jsonify(_user_out(get_user(db(), current_user_id())))
