"""Accounts: sign up, log in, guests, refresh, log out, who am I, and deleting the account."""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3 import APIBlueprint, Tag
from flask_openapi3.types import ResponseDict

from common.accounts.account_facts import account_changed
from common.accounts.schemas import (
    LoginRequest,
    SignupRequest,
    SignupResponse,
    TokenResponse,
    UserOut,
)
from common.accounts.users import (
    adopt_guest,
    authenticate,
    create_guest,
    create_user,
    delete_account,
    signup_role,
)
from common.jobs.conversations import forget_job_events
from common.platform.api_types import Problem
from common.platform.db import checkpoint_wal
from common.platform.models import Role, User
from web.resources import db, resources
from web.security import (
    BEARER,
    current_user,
    current_user_id,
    issue_tokens,
    optional_access_token,
    require_access_token,
    require_refresh_token,
    revoke_current_token,
    rotate_tokens,
)

bp = APIBlueprint("auth", __name__, url_prefix="/v1", abp_tags=[Tag(name="accounts")])
# 429: sign-ups per address; login attempts per address and failures per (account, address).
_ERRORS: ResponseDict = {401: Problem, 409: Problem, 422: Problem, 429: Problem, 503: Problem}
# Sign-up and login take a guest's token, optionally, to keep what the guest did.
_GUEST_OPTIONAL: list[dict[str, list[str]]] = [{}, {"bearer": []}]


def _user_out(user: User) -> dict[str, object]:
    return UserOut.model_validate(user, from_attributes=True).model_dump(mode="json")


def _adopt_presented_guest(user: User) -> None:
    # Called once the account is known: a bad token still fails the request (401).
    guest = optional_access_token()
    if guest is not None and guest.role == Role.GUEST.value:
        adopt_guest(db(), guest.id, user.id)
        account_changed(db(), resources().redis, [guest.id])  # the guest row is gone
        revoke_current_token()


@bp.post("/auth/signup", responses={201: SignupResponse, **_ERRORS}, security=_GUEST_OPTIONAL)
def signup(body: SignupRequest) -> tuple[Response, int]:
    """Create an account and return its tokens; a guest's token hands over its conversations."""
    settings = resources().settings
    role = signup_role(settings, body.email)
    user = create_user(db(), body.email, body.password, body.name, role)
    _adopt_presented_guest(user)
    tokens = issue_tokens(user)
    db().commit()
    return jsonify({**tokens, "user": _user_out(user)}), 201


@bp.post("/auth/login", responses={200: TokenResponse, **_ERRORS}, security=_GUEST_OPTIONAL)
def login(body: LoginRequest) -> Response:
    """Exchange email and password for tokens; a guest's token hands over its conversations."""
    # web/login_throttle.py wraps this view: the throttles run before the password is checked.
    user = authenticate(db(), body.email, body.password)
    _adopt_presented_guest(user)
    return jsonify(issue_tokens(user))


@bp.post("/auth/guest", responses={201: TokenResponse, 429: Problem, 503: Problem})
def guest() -> tuple[Response, int]:
    """A short-lived guest token (no refresh) to try the chat before signing up."""
    user = create_guest(db())
    tokens = issue_tokens(user)
    db().commit()
    return jsonify(tokens), 201


@bp.post(
    "/auth/refresh", responses={200: TokenResponse, 401: Problem, 503: Problem}, security=BEARER
)
def refresh() -> Response:
    """Trade a refresh token for new access and refresh tokens (each refresh token works once)."""
    require_refresh_token()
    return jsonify(rotate_tokens(current_user()))


@bp.post("/auth/logout", responses={204: None, 401: Problem, 503: Problem}, security=BEARER)
def logout() -> tuple[str, int]:
    """Revoke this access token and its session's refresh token."""
    require_access_token()
    revoke_current_token()
    return "", 204


@bp.get("/me", responses={200: UserOut, 401: Problem, 503: Problem}, security=BEARER)
def me() -> Response:
    """The authenticated user."""
    require_access_token()
    return jsonify(_user_out(current_user()))


@bp.delete("/me", responses={204: None, 401: Problem, 503: Problem}, security=BEARER)
def delete_me() -> tuple[str, int]:
    """Delete the account with its conversations, jobs and their results."""
    require_access_token()
    user_id = current_user_id()
    job_ids = delete_account(db(), user_id)
    account_changed(db(), resources().redis, [user_id])  # refused at once, in every process
    db().commit()
    # After the commit: the rows are gone for good, so their streams and sessions go too.
    revoke_current_token()
    forget_job_events(resources().redis, job_ids)
    checkpoint_wal(resources().engine)  # on SQLite, the deleted rows leave the -wal file too
    return "", 204
