"""A circuit breaker shared through Redis: after a run of provider failures, stop calling.

While open, calls are not attempted (queued jobs wait instead of burning attempts). After the
cool-down one caller is let through as a probe; its success closes the circuit, its failure
opens it again. When a probe last ended is kept, so a job waiting on the circuit is not given up
before the provider was tried again (see `workers.outcomes`).
"""

from __future__ import annotations

import time
from typing import Any

import redis

_PROBED_TTL_SECONDS = 86400


class CircuitOpen(Exception):
    """The provider is considered down; retry after `retry_in` seconds."""

    def __init__(self, retry_in: float, probed_at: float | None = None) -> None:
        super().__init__(f"circuit open, retry in {retry_in:.1f}s")
        self.retry_in = retry_in
        self.probed_at = probed_at  # when a probe last ended (epoch seconds), if known


class CircuitBreaker:
    """Counts consecutive failures across all workers and trips after `threshold`."""

    def __init__(
        self, client: redis.Redis, name: str, threshold: int = 5, cooldown_seconds: float = 20.0
    ) -> None:
        self.client = client
        self.threshold = threshold
        self.cooldown = cooldown_seconds
        prefix = f"bookchat:circuit:{name}"
        self.failures_key = f"{prefix}:failures"
        self.open_key = f"{prefix}:open_until"
        self.probe_key = f"{prefix}:probe"
        self.probed_key = f"{prefix}:probed_at"

    def before_call(self) -> None:
        """Raise CircuitOpen unless calls may go ahead (closed, or this caller is the probe)."""
        raw, probed = self.client.mget(self.open_key, self.probed_key)  # type: ignore[misc]
        if raw is None:
            return
        probed_at = float(probed) if probed is not None else None
        remaining = float(raw) - time.time()
        if remaining > 0:
            raise CircuitOpen(remaining, probed_at)
        if not self.client.set(self.probe_key, "1", nx=True, ex=max(1, round(self.cooldown))):
            raise CircuitOpen(min(self.cooldown, 2.0), probed_at)

    def record_success(self) -> None:
        """Close the circuit (a success while it was open is the probe that ends it)."""
        pipe = self.client.pipeline()
        pipe.get(self.open_key)
        pipe.delete(self.failures_key, self.open_key, self.probe_key)
        was_open, _ = pipe.execute()
        if was_open is not None:
            self._probed()

    def record_failure(self) -> bool:
        """Count a provider failure; True when this one opened the circuit."""
        ttl = max(1, int(self.cooldown * 6))
        pipe = self.client.pipeline()
        pipe.incr(self.failures_key)
        pipe.expire(self.failures_key, ttl)
        pipe.get(self.open_key)
        failures, _, open_until = pipe.execute()
        if open_until is not None and float(open_until) > time.time():
            return False  # already open: calls that were in flight do not extend it
        half_open = open_until is not None
        if int(failures) < self.threshold and not half_open:
            return False
        self.client.set(self.open_key, str(time.time() + self.cooldown), ex=ttl)
        self.client.delete(self.probe_key)
        if half_open:
            self._probed()  # the probe failed: the circuit opens again
        return True

    def _probed(self) -> None:
        self.client.set(self.probed_key, str(time.time()), ex=_PROBED_TTL_SECONDS)

    def is_open(self) -> bool:
        """Whether calls are currently held back."""
        raw = self.client.get(self.open_key)
        return raw is not None and float(raw) > time.time()  # type: ignore[arg-type]

    def state(self) -> dict[str, Any]:
        """For probes: `closed` or `open`, with the seconds until a probe call is allowed."""
        raw = self.client.get(self.open_key)
        remaining = float(raw) - time.time() if raw is not None else 0.0  # type: ignore[arg-type]
        if remaining > 0:
            return {"state": "open", "retry_in": round(remaining, 1)}
        return {"state": "closed"}
