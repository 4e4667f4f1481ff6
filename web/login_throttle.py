"""Login throttles that an attacker cannot turn against an account's owner.

Counted in Redis with the moving window of the limits library (the strategy flask-limiter uses):
- failed logins per (account, address), RATE_LIMIT_LOGIN_FAILURES: past it that address gets
  429 for that account before its password is checked; other addresses are not affected;
- failed logins per account from any address, RATE_LIMIT_LOGIN_ACCOUNT_FAILURES: past it every
  login for the account waits LOGIN_SLOWDOWN_SECONDS before its password is checked. It never
  refuses, so failures from elsewhere can slow the owner down but never lock them out;
- attempts per address, RATE_LIMIT_LOGIN, are a row of the table in web/rate_limits.py.

An attempt is counted against its (account, address) before the password is checked, so
parallel guesses cannot all pass one check; the right password clears that count. Accounts are
keyed by an HMAC of the normalized email (`login_key`): Redis never holds the address.

Unlike the table's limits these fail closed: when Redis cannot count, the login is a 503 before
the password is checked, so a right and a wrong password get the same answer and an outage is
no oracle.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from flask import Response, make_response, request
from limits import RateLimitItem, parse_many
from limits.strategies import RateLimiter

from common.accounts.users import login_key
from common.platform.errors import InvalidCredentials, RateLimited
from common.platform.settings import Settings

PAIR_SCOPE = "login-failures"
ACCOUNT_SCOPE = "login-account-failures"
_MAX_EMAIL_CHARS = 320


class LoginThrottle:
    """The per-(account, address) and per-account failure counts of one app."""

    def __init__(self, strategy: RateLimiter, settings: Settings) -> None:
        self.strategy = strategy
        self.pair_limits = parse_many(settings.rate_limit_login_failures)
        self.account_limits = parse_many(settings.rate_limit_login_account_failures)
        self.slowdown_seconds = settings.login_slowdown_seconds
        self._secret = settings.jwt_secret()

    def account(self, email: str) -> str:
        """The account's key in Redis: a keyed hash of the normalized email."""
        return login_key(self._secret, email)

    def admit(self, account: str, address: str) -> None:
        """Count the attempt for (account, address): 429 past the limit, a pause under attack."""
        for item in self.pair_limits:
            if not self.strategy.hit(item, PAIR_SCOPE, account, address):
                raise self._refusal(item, account, address)
        if self.slowdown_seconds and self.under_attack(account):
            time.sleep(self.slowdown_seconds)

    def under_attack(self, account: str) -> bool:
        """Whether the account's failures from all addresses have reached their limit."""
        return any(
            self.strategy.get_window_stats(item, ACCOUNT_SCOPE, account).remaining <= 0
            for item in self.account_limits
        )

    def failed(self, account: str) -> None:
        """A wrong password: count it for the account (its address's count already has it)."""
        for item in self.account_limits:
            self.strategy.hit(item, ACCOUNT_SCOPE, account)

    def succeeded(self, account: str, address: str) -> None:
        """The right password: this address starts afresh for this account."""
        for item in self.pair_limits:
            self.strategy.clear(item, PAIR_SCOPE, account, address)

    def _refusal(self, item: RateLimitItem, account: str, address: str) -> RateLimited:
        reset_at = self.strategy.get_window_stats(item, PAIR_SCOPE, account, address).reset_time
        retry_after = max(1, math.ceil(reset_at - time.time()))
        return RateLimited(
            f"too many failed logins for this account from this address: the limit is {item}; "
            f"retry in {retry_after}s",
            retry_after=retry_after,
            resets_at=datetime.fromtimestamp(reset_at, UTC).isoformat(),
            limit=str(item),
            scope=PAIR_SCOPE,
        )


def _body_email() -> str | None:
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    return email[:_MAX_EMAIL_CHARS] if isinstance(email, str) and email.strip() else None


def guard_login(
    throttle: LoginThrottle, view: Callable[..., Any], address: Callable[[], str]
) -> Callable[..., Any]:
    """The login view behind the throttle: admitted before validation and the password check."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Response:
        email = _body_email()
        if email is None:  # no account to count: validation refuses the body
            return make_response(view(*args, **kwargs))
        account, source = throttle.account(email), address()
        throttle.admit(account, source)
        try:
            response = make_response(view(*args, **kwargs))
        except InvalidCredentials:
            throttle.failed(account)
            raise
        if response.status_code == 200:
            throttle.succeeded(account, source)
        return response

    return guarded
