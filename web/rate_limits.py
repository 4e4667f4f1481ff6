"""Request limits (moving windows counted in Redis), applied to endpoints from one table.

The views carry no limit decorators: `init_app` wraps `app.view_functions` after the
blueprints are registered. The wrapper runs after the blueprints' auth hooks and before
flask-openapi3 validates the body, so a malformed request still counts against its limit.

Strategy: moving window. Our limits are small (at most a few hundred a window), so keeping
one timestamp per hit is cheap, and unlike a fixed window it never lets twice the limit through
across a window boundary, which matters for the brute-force limits. The window is the limits
library's (the same list, under the same key, as flask-limiter kept it), counted by one script
that also returns the window, so the X-RateLimit-* headers cost no second read (flask-limiter
read the window again for them: a second round trip on every limited request).

Redis unreachable: requests go through unlimited (logged). An in-memory fallback would apply
one generic limit per process, not the per-account and per-user limits here; failing open for
the short outages Redis has is the better trade, and the endpoints that need Redis anyway
answer 503 on their own. Login is the exception: its failure counts (web/login_throttle.py)
fail closed, with a 503.

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
from functools import wraps
from typing import Any

import redis
from flask import Flask, Response, g, request
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter, RateLimiter
from redis import RedisError
from redis.client import Pipeline

from common.platform.errors import GuestLimitReached, RateLimited
from common.platform.models import Role
from common.platform.redis_client import redis_url
from common.platform.settings import Settings
from web.access_tokens import AUTH_COMPANIONS, AuthCompanion
from web.login_throttle import LoginThrottle, guard_login
from web.resources import resources
from web.security import current_account, current_user_id, token_claims

log = logging.getLogger(__name__)
LOGIN_ENDPOINT = "auth.login"
ADMIN_PAGE_LOGIN_ENDPOINT = "admin_page.login"  # checks the throttle itself (a form, not JSON)
LOGIN_ENDPOINTS = (LOGIN_ENDPOINT, ADMIN_PAGE_LOGIN_ENDPOINT)
RATE_LIMITED = "bookchat.rate_limited"  # app.extensions: endpoint -> the scopes limiting it


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


@dataclass(frozen=True)
class EndpointLimit:
    """One row of the table: a limit shared by its endpoints, keyed per caller."""

    scope: str
    what: str  # for the 429's detail: "too many <what>"
    endpoints: tuple[str, ...]
    limit: Callable[[Settings], str]
    key: Callable[[], str]
    # The roles it applies to (None: every caller). Users' own limit: admins are exempt,
    # guests have theirs, and a request without a verified token is the view's to refuse.
    roles: frozenset[str] | None = None
    error: type[RateLimited] = RateLimited  # its own code where the client must say more

    def applies_to(self, role: str | None) -> bool:
        """Whether a caller of this role (None: no verified token) counts against the row."""
        return self.roles is None or role in self.roles


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
        lambda s: s.rate_limit_submit, job_owner, roles=frozenset({Role.USER.value}),
    ),
    EndpointLimit(
        "jobs-guest", "jobs submitted by this guest", JOB_ENDPOINTS,
        lambda s: s.rate_limit_guest_submit, job_owner, roles=frozenset({Role.GUEST.value}),
    ),
    EndpointLimit(
        "feedback-user", "ratings from this user", FEEDBACK_ENDPOINTS,
        lambda s: s.rate_limit_feedback, job_owner,
    ),
)  # fmt: skip


# A moving-window hit that also reports the window, so the headers need no second read.
# The list holds one timestamp per hit, newest first, as the limits library keeps it (the
# login throttle's counts use the library itself). KEYS: the window. ARGV: now, limit, expiry.
# Returns {1 counted / 0 refused, hits in the window, the oldest hit in the window}.
_HIT = """
local now, limit, expiry = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local counted = 1
local entry = redis.call('LINDEX', KEYS[1], limit - 1)
if entry and tonumber(entry) >= now - expiry then
  counted = 0
else
  redis.call('LPUSH', KEYS[1], ARGV[1])
  redis.call('LTRIM', KEYS[1], 0, limit - 1)
  redis.call('EXPIRE', KEYS[1], expiry)
end
local low, high, found = 0, math.min(limit, redis.call('LLEN', KEYS[1])) - 1, -1
while low <= high do
  local mid = math.floor((low + high) / 2)
  if tonumber(redis.call('LINDEX', KEYS[1], mid)) >= now - expiry then
    found = mid
    low = mid + 1
  else
    high = mid - 1
  end
end
if found < 0 then return {counted, 0, ARGV[1]} end
return {counted, found + 1, redis.call('LINDEX', KEYS[1], found)}
"""
_G_KEY = "bookchat_rate_limit"
_PLANNED = "bookchat_rate_limit_planned"  # hits sent with the token check
_CHECKED = "bookchat_rate_limit_checked"


@dataclass(frozen=True)
class Hit:
    """One limit's window right after the request counted against it (or was refused)."""

    item: RateLimitItem
    counted: bool
    in_window: int
    reset_at: float  # when the oldest hit in the window leaves it

    @property
    def remaining(self) -> int:
        """Hits left in the window."""
        return max(0, self.item.amount - self.in_window)


def _queue_hit(pipe: Pipeline, item: RateLimitItem, key: str, scope: str) -> None:
    # EVAL, not EVALSHA: redis-py's pipeline would ask SCRIPT EXISTS first (a round trip);
    # Redis keeps the compiled script, so the text only costs its bytes on the wire.
    window = f"LIMITS:{item.key_for(key, scope)}"
    pipe.eval(_HIT, 1, window, time.time(), item.amount, item.get_expiry())


def _result(item: RateLimitItem, reply: Any) -> Hit:
    counted, in_window, oldest = reply
    return Hit(item, bool(counted), int(in_window), float(oldest) + item.get_expiry())


def _hit(client: redis.Redis, item: RateLimitItem, key: str, scope: str) -> Hit:
    pipe = client.pipeline(transaction=False)
    _queue_hit(pipe, item, key, scope)
    return _result(item, pipe.execute()[0])


def ride_along(
    rows_of: dict[str, tuple[EndpointLimit, ...]], items: dict[str, list[RateLimitItem]]
) -> AuthCompanion:
    """The request's per-user limit hits, sent in the token check's round trip.

    The row is chosen by the token's role claim, a guess the account's facts confirm in
    `check_limits` (a demoted admin's request, guessed exempt, is counted there instead).
    """

    def queue(claims: dict[str, Any], pipe: Pipeline) -> Callable[[list[Any]], None] | None:
        rows = rows_of.get(request.endpoint or "", ())
        role, subject = claims.get("role"), claims.get("sub")
        if getattr(g, _CHECKED, False) or not isinstance(subject, str):
            return None
        planned = [
            (row.scope, items[row.scope][0])
            for row in rows
            if row.key is job_owner and row.applies_to(role) and len(items[row.scope]) == 1
        ]
        for scope, item in planned:
            _queue_hit(pipe, item, subject, scope)

        def keep(replies: list[Any]) -> None:
            hits = {}
            for (scope, item), reply in zip(planned, replies, strict=True):
                if not isinstance(reply, Exception):  # else check_limits counts it itself
                    hits[(scope, str(item))] = _result(item, reply)
            setattr(g, _PLANNED, hits)

        return keep if planned else None

    return queue


def _refusal(row: EndpointLimit, hit: Hit) -> RateLimited:
    """The 429 for a breached limit, naming it and when to retry (also as a time)."""
    retry_after = max(1, math.ceil(hit.reset_at - time.time()))
    return row.error(
        f"too many {row.what}: the limit is {hit.item}; retry in {retry_after}s",
        retry_after=retry_after,
        resets_at=datetime.fromtimestamp(hit.reset_at, UTC).isoformat(),
        limit=str(hit.item),
        scope=row.scope,
    )


def check_limits(rows: tuple[EndpointLimit, ...], items: dict[str, list[RateLimitItem]]) -> None:
    """Count the request against each row that applies (one script call a limit); 429 past one.

    Redis unreachable: the request goes through unlimited (logged), see the module docstring.
    """
    setattr(g, _CHECKED, True)
    planned: dict[tuple[str, str], Hit] = getattr(g, _PLANNED, {})
    role = _role()
    for row in rows:
        if not row.applies_to(role):
            continue
        key = row.key()
        if not key:
            continue
        for item in items[row.scope]:
            try:
                hit = planned.get((row.scope, str(item))) or _hit(
                    resources().redis, item, key, row.scope
                )
            except RedisError:
                log.exception("could not count the request against %s; let through", row.scope)
                return
            if getattr(g, _G_KEY, None) is None or not hit.counted:
                setattr(g, _G_KEY, hit)
            if not hit.counted:
                raise _refusal(row, hit)


def _limited(
    view: Callable[..., Any], rows: tuple[EndpointLimit, ...], items: dict[str, list[RateLimitItem]]
) -> Callable[..., Any]:
    @wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        check_limits(rows, items)
        return view(*args, **kwargs)

    return limited


def make_login_strategy(settings: Settings) -> RateLimiter:
    """The limits library's moving window over our Redis, for the login throttle's counts."""
    storage = storage_from_string(
        redis_url(settings),
        # Its own Redis connections: a hung Redis must not hang every login.
        socket_connect_timeout=math.ceil(settings.redis_connect_timeout_seconds),
        socket_timeout=min(2, math.ceil(settings.redis_socket_timeout_seconds)),
    )
    return MovingWindowRateLimiter(storage)


def _add_headers(response: Response) -> Response:
    """X-RateLimit-* headers for the limit a request counted against (the one that refused it).

    From the hit's own result: no second read of the window. Only a 429 says when to retry
    (Retry-After), so a 202's polling hint stands.
    """
    hit: Hit | None = getattr(g, _G_KEY, None)
    if hit is not None:
        response.headers["X-RateLimit-Limit"] = str(hit.item.amount)
        response.headers["X-RateLimit-Remaining"] = str(hit.remaining)
        response.headers["X-RateLimit-Reset"] = str(int(hit.reset_at + 1))
    return response


def init_app(app: Flask, settings: Settings) -> list[str]:
    """Apply the table to the registered endpoints (call after the blueprints); those limited.

    Endpoints of the table that the app does not have (yet) are skipped.
    """
    app.after_request(_add_headers)
    throttle = LoginThrottle(make_login_strategy(settings), settings)
    app.extensions["bookchat.login_throttle"] = throttle  # the admin page's login uses it too
    if LOGIN_ENDPOINT in app.view_functions:  # inside the table's per-address limit
        login = app.view_functions[LOGIN_ENDPOINT]
        app.view_functions[LOGIN_ENDPOINT] = guard_login(throttle, login, client_address)
    items = {row.scope: parse_many(row.limit(settings)) for row in LIMITS}
    scopes: dict[str, list[str]] = {}
    rows_of: dict[str, tuple[EndpointLimit, ...]] = {}
    for endpoint in app.view_functions:
        rows = tuple(row for row in LIMITS if endpoint in row.endpoints)
        if rows:
            app.view_functions[endpoint] = _limited(app.view_functions[endpoint], rows, items)
            scopes[endpoint] = sorted(row.scope for row in rows)
            rows_of[endpoint] = rows
    app.extensions[RATE_LIMITED] = scopes  # the OpenAPI document declares their 429
    app.extensions.setdefault(AUTH_COMPANIONS, []).append(ride_along(rows_of, items))
    return sorted(scopes)
