"""Request limits (flask-limiter, counted in Redis), applied to endpoints from one table.

The views carry no limit decorators: `init_app` wraps `app.view_functions` after the
blueprints are registered. The wrapper runs after the blueprints' auth hooks and before
flask-openapi3 validates the body, so a malformed request still counts against its limit.

Strategy: moving window. Our limits are small (at most a few hundred a window), so keeping
one timestamp per hit is cheap, and unlike a fixed window it never lets twice the limit through
across a window boundary, which matters for the brute-force limits.

Redis unreachable: `swallow_errors` lets requests through unlimited (logged). flask-limiter's
in-memory fallback would apply one generic limit per process to every route, keyed by IP, not
the per-account and per-user limits here; failing open for the short outages Redis has is the
better trade, and the endpoints that need Redis anyway answer 503 on their own. Login is the
exception: its failure counts (web/login_throttle.py) fail closed, with a 503.

Addresses: an IPv6 client counts by its /64 network, which one subscriber holds whole, so
rotating through it buys no fresh limits.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, cast

from flask import Flask, Response
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address
from redis import RedisError

from common.platform.errors import GuestLimitReached, RateLimited
from common.platform.models import Role
from common.platform.redis_client import redis_url
from common.platform.settings import Settings
from web.login_throttle import LoginThrottle, guard_login
from web.problems import error_problem
from web.security import current_account, current_user_id, token_claims

log = logging.getLogger(__name__)
LOGIN_ENDPOINT = "auth.login"
ADMIN_PAGE_LOGIN_ENDPOINT = "admin_page.login"  # checks the throttle itself (a form, not JSON)
LOGIN_ENDPOINTS = (LOGIN_ENDPOINT, ADMIN_PAGE_LOGIN_ENDPOINT)


def client_address() -> str:
    """The client's address as the WSGI server reports it; an IPv6 client's /64 network."""
    address = get_remote_address()
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return address


def _claims() -> dict[str, Any]:
    # The blueprints verify the token in before_request hooks, before the wrapper runs; an
    # endpoint that did not leaves nothing to key on, so its per-user limit does not apply.
    return token_claims()


def job_owner() -> str:
    """The per-user key of job submissions: the authenticated user's id."""
    return str(current_user_id())


def _role() -> str | None:
    # The account's facts (versioned), not the token's claim: a changed role counts at once.
    return current_account().role if _claims() else None


def _not_a_user() -> bool:
    # Users' own limit: admins are exempt, guests have theirs, and a request without a
    # verified token is the view's to refuse.
    return not _claims() or _role() in (Role.ADMIN.value, Role.GUEST.value)


def _not_a_guest() -> bool:
    return _role() != Role.GUEST.value


@dataclass(frozen=True)
class EndpointLimit:
    """One row of the table: a limit shared by its endpoints, keyed per caller."""

    scope: str
    what: str  # for the 429's detail: "too many <what>"
    endpoints: tuple[str, ...]
    limit: Callable[[Settings], str]
    key: Callable[[], str]
    exempt_when: Callable[[], bool] | None = None
    error: type[RateLimited] = RateLimited  # its own code where the client must say more


JOB_ENDPOINTS = ("chat_jobs.submit", "chapters.personalize", "chapters.translate")
FEEDBACK_ENDPOINTS = ("answer_feedback.rate", "answer_feedback.withdraw")
LIMITS: tuple[EndpointLimit, ...] = (
    EndpointLimit(
        "signup-ip", "sign-ups from this address", ("auth.signup",),
        lambda s: s.rate_limit_signup, client_address,
    ),
    EndpointLimit(
        "login-ip", "login attempts from this address", LOGIN_ENDPOINTS,
        lambda s: s.rate_limit_login, client_address,
    ),
    EndpointLimit(
        "guest-ip", "guest tokens from this address", ("auth.guest",),
        lambda s: s.rate_limit_guest, client_address, error=GuestLimitReached,
    ),
    EndpointLimit(
        "jobs-user", "jobs submitted by this user", JOB_ENDPOINTS,
        lambda s: s.rate_limit_submit, job_owner, exempt_when=_not_a_user,
    ),
    EndpointLimit(
        "jobs-guest", "jobs submitted by this guest", JOB_ENDPOINTS,
        lambda s: s.rate_limit_guest_submit, job_owner, exempt_when=_not_a_guest,
    ),
    EndpointLimit(
        "feedback-user", "ratings from this user", FEEDBACK_ENDPOINTS,
        lambda s: s.rate_limit_feedback, job_owner,
    ),
)  # fmt: skip
_ROWS = {row.scope: row for row in LIMITS}


def _breached(limit: RequestLimit) -> Response:
    """The 429 problem for a breached limit, naming it and when to retry (also as a time)."""
    scope = str(limit.request_args[-1])
    row = _ROWS.get(scope)
    retry_after = max(1, math.ceil(limit.reset_at - time.time()))
    error = (row.error if row else RateLimited)(
        f"too many {row.what if row else 'requests'}: the limit is {limit.limit}; "
        f"retry in {retry_after}s",
        retry_after=retry_after,
        resets_at=datetime.fromtimestamp(limit.reset_at, UTC).isoformat(),
        limit=str(limit.limit),
        scope=scope,
    )
    return error_problem(error)


def make_limiter(settings: Settings) -> Limiter:
    """A limiter counting in our Redis, with rate-limit headers and no default limits."""
    return Limiter(
        client_address,
        storage_uri=redis_url(settings),
        # The limiter's own Redis connections: a hung Redis must not hang every request.
        storage_options={
            "socket_connect_timeout": math.ceil(settings.redis_connect_timeout_seconds),
            "socket_timeout": min(2, math.ceil(settings.redis_socket_timeout_seconds)),
        },
        strategy="moving-window",
        headers_enabled=False,  # see _add_headers
        swallow_errors=True,
        on_breach=_breached,
    )


def _add_headers(limiter: Limiter, response: Response) -> Response:
    """X-RateLimit-* headers for the limit a request counted against (the tightest, if breached).

    flask-limiter's own headers would also put a Retry-After on every limited response, even a
    201, and override the submit's polling hint; here only a 429 says when to retry.
    """
    limit = limiter.current_limit
    if limit is None:
        return response
    try:
        response.headers["X-RateLimit-Limit"] = str(limit.limit.amount)
        response.headers["X-RateLimit-Remaining"] = str(limit.remaining)
        response.headers["X-RateLimit-Reset"] = str(limit.reset_at)
    except RedisError:
        log.warning("could not read the rate limit's window for the headers", exc_info=True)
    return response


def init_app(app: Flask, settings: Settings) -> list[str]:
    """Apply the table to the registered endpoints (call after the blueprints); those limited.

    Endpoints of the table that the app does not have (yet) are skipped.
    """
    limiter = make_limiter(settings)
    # Registered first so it runs after the limiter's own after-request hook.
    app.after_request(partial(_add_headers, limiter))
    limiter.init_app(app)
    app.extensions["bookchat.limiter"] = limiter
    limited: list[str] = []
    throttle = LoginThrottle(limiter.limiter, settings)
    app.extensions["bookchat.login_throttle"] = throttle  # the admin page's login uses it too
    if LOGIN_ENDPOINT in app.view_functions:  # inside the table's per-address limit
        login = app.view_functions[LOGIN_ENDPOINT]
        app.view_functions[LOGIN_ENDPOINT] = guard_login(throttle, login, client_address)
    for row in LIMITS:
        decorate = limiter.shared_limit(
            partial(row.limit, settings),
            row.scope,
            key_func=row.key,
            exempt_when=row.exempt_when,
        )
        for endpoint in row.endpoints:
            if endpoint in app.view_functions:
                view: Callable[..., Any] = app.view_functions[endpoint]
                app.view_functions[endpoint] = cast(Callable[..., Any], decorate(view))
                limited.append(endpoint)
    return sorted(set(limited))
