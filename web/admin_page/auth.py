"""Signing in to the admin page: the login form, logout, and the guard on every other route."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import current_app, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from common.accounts.users import authenticate
from common.platform.api_types import MAX_PASSWORD_CHARS
from common.platform.errors import Forbidden, InvalidCredentials, InvalidInput
from common.platform.models import Role, User
from web.admin_page import sessions
from web.login_throttle import LoginThrottle
from web.rate_limits import client_address
from web.resources import db, resources

PUBLIC_ENDPOINTS = frozenset({"admin_page.login_form", "admin_page.login", "admin_page.static"})
_MAX_EMAIL_CHARS = 320
_NONCE_CHARS = 43  # secrets.token_urlsafe(32)


def current_admin() -> User:
    """The signed-in administrator of this request (after the guard ran)."""
    user: User = g.admin_user
    return user


def csrf_token() -> str:
    """The CSRF token the page's forms carry."""
    session: sessions.AdminSession = g.admin_session
    return session.csrf


def _session_id() -> str | None:
    return request.cookies.get(sessions.cookie_name(request))


def _same_origin() -> bool:
    # Defence in depth beside the token: a browser names the page that sent a form.
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc.lower() == request.host.lower()


def _form_is_ours(session: sessions.AdminSession) -> bool:
    return _same_origin() and sessions.tokens_match(session.csrf, request.form.get("csrf_token"))


def _login_url() -> str:
    target = request.full_path if request.method == "GET" else url_for("admin_page.dashboard")
    return url_for("admin_page.login_form", next=target.rstrip("?"))


def guard() -> Response | None:
    """Before every admin page route: anonymous to the login, non-admins 403, POSTs CSRF-checked."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    session = sessions.load_session(resources().redis, _session_id())
    user = db().get(User, session.user_id) if session else None
    if session is None or user is None:
        return redirect(_login_url(), 303)
    if user.role != Role.ADMIN.value:  # the row's role: a demoted admin is out at once
        raise Forbidden("this page is for administrators")
    if request.method == "POST" and not _form_is_ours(session):
        raise Forbidden("the form's security token is missing or stale; reload the page")
    g.admin_session, g.admin_user = session, user
    return None


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of the admin page, never another site."""
    fallback = url_for("admin_page.dashboard")
    if not target or "\\" in target or any(ord(c) < 32 for c in target):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/admin"):
        return fallback
    return target


def _login_nonce() -> str:
    nonce = request.cookies.get(sessions.LOGIN_COOKIE, "")
    return nonce if len(nonce) == _NONCE_CHARS else secrets.token_urlsafe(32)


def _login_page(status: int = 200, error: str | None = None, email: str = "") -> Response:
    nonce = _login_nonce()
    secret = resources().settings.jwt_secret()
    html = render_template(
        "admin_page/login.html",
        form_token=sessions.login_form_token(secret, nonce),
        next=safe_next(request.values.get("next")),
        error=error,
        email=email,
    )
    response = Response(html, status=status, mimetype="text/html")
    sessions.set_cookie(
        response, request, sessions.LOGIN_COOKIE, nonce, sessions.LOGIN_FORM_SECONDS
    )
    return response


def login_form() -> Response:
    """GET /admin/login: the sign-in form (an admin already signed in goes to the page)."""
    session = sessions.load_session(resources().redis, _session_id())
    if session is not None:
        user = db().get(User, session.user_id)
        if user is not None and user.role == Role.ADMIN.value:
            return redirect(safe_next(request.args.get("next")), 303)
    return _login_page()


def _form_field(name: str, limit: int) -> str:
    value = request.form.get(name, "")
    if len(value) > limit or "\x00" in value:
        raise InvalidInput(f"the {name} is too long or holds a NUL character")
    return value


def _throttle() -> LoginThrottle:
    throttle: LoginThrottle = current_app.extensions["bookchat.login_throttle"]
    return throttle


def login() -> Response:
    """POST /admin/login: check the password through the login throttle and start a session."""
    nonce = request.cookies.get(sessions.LOGIN_COOKIE, "")
    expected = sessions.login_form_token(resources().settings.jwt_secret(), nonce) if nonce else ""
    if not _same_origin() or not sessions.tokens_match(expected, request.form.get("csrf_token")):
        raise Forbidden("the sign-in form expired or came from another site; reload it")
    email = _form_field("email", _MAX_EMAIL_CHARS).strip()
    password = _form_field("password", MAX_PASSWORD_CHARS)
    if not email or not password:
        return _login_page(422, "Enter your email and password.", email)
    throttle = _throttle()
    account, address = throttle.account(email), client_address()
    throttle.admit(account, address)  # 429 past the limit, before the password is checked
    try:
        user = authenticate(db(), email, password)
    except InvalidCredentials:
        throttle.failed(account)
        return _login_page(401, "Wrong email or password.", email)
    throttle.succeeded(account, address)
    if user.role != Role.ADMIN.value:
        raise Forbidden("this account is not an administrator's")
    session_id, _session = sessions.start_session(resources().redis, user.id)
    response = redirect(safe_next(request.form.get("next")), 303)
    sessions.set_cookie(
        response, request, sessions.cookie_name(request), session_id, sessions.MAX_AGE_SECONDS
    )
    sessions.clear_cookie(response, request, sessions.LOGIN_COOKIE)
    return response


def logout() -> Response:
    """POST /admin/logout: end the session here and in Redis."""
    sessions.end_session(resources().redis, _session_id())
    response = redirect(url_for("admin_page.login_form"), 303)
    sessions.clear_cookie(response, request, sessions.cookie_name(request))
    return response
