"""Who may read the private probes (/metrics, /readyz?detail=true), and their short-lived cache.

A reader presents `Authorization: Bearer <METRICS_TOKEN>` (compared in constant time) or an
administrator's access token. Without METRICS_TOKEN, a request from this host's loopback
address that no proxy forwarded is admitted too (`bookchat dev`, a local Prometheus); anyone
else gets 404, as if the route did not exist. A proxy on the same host forwards public traffic
from 127.0.0.1: set METRICS_TOKEN there.
"""

from __future__ import annotations

import hmac
import ipaddress
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from flask import current_app, request

from common.platform.errors import NotFound, Unauthorized
from web.resources import resources
from web.security import require_admin

T = TypeVar("T")
# Headers a reverse proxy adds: their presence means the loopback peer is not the client.
_PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")
_CACHES = "bookchat_probe_caches"
_CREATING = threading.Lock()


def require_private_reader() -> None:
    """Refuse the request unless it may read metrics and readiness details (401, 403 or 404)."""
    token = resources().settings.metrics_token
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and presented.strip():
        expected = token.get_secret_value() if token else ""
        if expected and hmac.compare_digest(presented.strip().encode(), expected.encode()):
            return
        require_admin()  # a JWT: an admin's is accepted, any other is 401 or 403
        return
    if token is None:
        if _from_this_host():
            return
        raise NotFound("no such page")
    raise Unauthorized(
        "send `Authorization: Bearer` with the metrics token or an admin's access token"
    )


def _from_this_host() -> bool:
    if any(name in request.headers for name in _PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


class TimedCache(Generic[T]):
    """One value, computed at most once per `seconds` (callers meanwhile wait for it)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._value: T | None = None
        self._expires = float("-inf")

    def get(self, compute: Callable[[], T]) -> T:
        """The cached value, or a fresh one when it is older than `seconds` (errors not kept)."""
        with self._lock:  # one computation at a time: a burst of scrapes costs one
            if self._value is None or self.clock() >= self._expires:
                self._value = compute()
                self._expires = self.clock() + self.seconds
            return self._value


def probe_cache(name: str) -> TimedCache[Any]:
    """This app's cache for one probe, lasting METRICS_CACHE_SECONDS."""
    with _CREATING:
        caches: dict[str, TimedCache[Any]] = current_app.extensions.setdefault(_CACHES, {})
        if name not in caches:
            caches[name] = TimedCache(resources().settings.metrics_cache_seconds)
        return caches[name]
