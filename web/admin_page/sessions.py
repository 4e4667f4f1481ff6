"""The admin page's own sign-in: server-side sessions in Redis behind an opaque cookie.

The cookie holds only a random id; Redis holds (under the id's SHA-256) the user id and the
session's CSRF token, so logging out ends the session everywhere and a stolen database of keys
gives no cookie. The user's role is read from their row on every request, never from here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass

import redis
from werkzeug.wrappers import Request, Response

COOKIE = "bookchat_admin"
# The __Host- prefix makes the browser refuse the cookie unless Secure, Path=/ and host-only.
SECURE_COOKIE = "__Host-bookchat_admin"
LOGIN_COOKIE = "bookchat_admin_login"
IDLE_SECONDS = 3600
MAX_AGE_SECONDS = 12 * 3600
LOGIN_FORM_SECONDS = 3600
_KEY = "bookchat:admin-page:session:"


@dataclass(frozen=True)
class AdminSession:
    """A signed-in browser: whose it is, its CSRF token, and when it began."""

    user_id: uuid.UUID
    csrf: str
    started: float


def _key(session_id: str) -> str:
    return _KEY + hashlib.sha256(session_id.encode()).hexdigest()


def cookie_name(request: Request) -> str:
    """The session cookie's name: __Host- prefixed when the request came over https."""
    return SECURE_COOKIE if request.is_secure else COOKIE


def start_session(client: redis.Redis, user_id: uuid.UUID) -> tuple[str, AdminSession]:
    """A new session (a fresh id at every sign-in, so a planted id is worthless)."""
    session_id = secrets.token_urlsafe(32)
    session = AdminSession(user_id, secrets.token_urlsafe(32), time.time())
    body = {"user": str(user_id), "csrf": session.csrf, "started": session.started}
    client.set(_key(session_id), json.dumps(body), ex=IDLE_SECONDS)
    return session_id, session


def load_session(client: redis.Redis, session_id: str | None) -> AdminSession | None:
    """The live session with this id, its idle timer renewed; None when absent or expired."""
    if not session_id or len(session_id) > 128:
        return None
    raw = client.get(_key(session_id))
    if raw is None:
        return None
    body = json.loads(raw)  # type: ignore[arg-type]
    session = AdminSession(uuid.UUID(body["user"]), body["csrf"], float(body["started"]))
    if time.time() - session.started > MAX_AGE_SECONDS:
        client.delete(_key(session_id))
        return None
    client.expire(_key(session_id), IDLE_SECONDS)
    return session


def end_session(client: redis.Redis, session_id: str | None) -> None:
    """Forget the session (logout)."""
    if session_id and len(session_id) <= 128:
        client.delete(_key(session_id))


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    """An HttpOnly, SameSite=Strict cookie for the whole site; Secure over https."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=request.is_secure,
        httponly=True,
        samesite="Strict",
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    """Tell the browser to drop the cookie."""
    response.delete_cookie(
        name, path="/", secure=request.is_secure, httponly=True, samesite="Strict"
    )


def login_form_token(secret: str, nonce: str) -> str:
    """The login form's CSRF token: a keyed hash of the nonce its cookie carries."""
    return hmac.new(secret.encode(), b"admin-login:" + nonce.encode(), "sha256").hexdigest()


def tokens_match(expected: str | None, presented: str | None) -> bool:
    """Constant-time comparison of two tokens; a missing one never matches."""
    if not expected or not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())
