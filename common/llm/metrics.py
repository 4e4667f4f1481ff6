"""Counters of the LLM layer (requests, 429s, retries, waits, tokens).

Each is counted twice: in Prometheus (`common.platform.observability`, what /metrics shows) and in a
Redis hash that adds up every worker on every host (`Counters.snapshot`, for tests and tools).
The Redis half is best-effort: a model call already paid for must never fail because Redis is
away, so a failed write is logged and dropped, and the hash is left alone for a few seconds
rather than making every call wait out a hung server's time-out.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import redis

from common.platform.observability import count_llm

log = logging.getLogger(__name__)
COUNTERS_KEY = "bookchat:metrics:llm"
# After a failed write, skip the Redis hash this long (Prometheus still counts everything).
SKIP_AFTER_FAILURE_SECONDS = 5.0

# USD per million tokens (input, output), from the provider's public price list.
PRICES_PER_MILLION = {
    "gpt-4o-mini": (0.15, 0.60),
    "text-embedding-3-small": (0.02, 0.0),
}


def estimate_cost_usd(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """What a call cost at list prices, or None for a model we have no price for."""
    for name, (price_in, price_out) in PRICES_PER_MILLION.items():
        if model.startswith(name):
            return (prompt_tokens * price_in + completion_tokens * price_out) / 1_000_000
    return None


class Counters:
    """Process-wide counters in a Redis hash, written best-effort (never raising)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._skip_until = 0.0

    def add(self, name: str, amount: float = 1) -> None:
        """Increase one counter."""
        count_llm(name, amount)
        self._shared(name, amount)

    def add_tokens(self, prompt: int, completion: int) -> None:
        """Count a call's prompt and completion tokens (and their sum, as `tokens`)."""
        count_llm("prompt_tokens", prompt)
        count_llm("completion_tokens", completion)
        self._shared("tokens", prompt + completion)

    def _shared(self, name: str, amount: float) -> None:
        if time.monotonic() < self._skip_until:
            return
        try:
            self.client.hincrbyfloat(COUNTERS_KEY, name, amount)
        except redis.RedisError as exc:
            self._skip_until = time.monotonic() + SKIP_AFTER_FAILURE_SECONDS
            log.warning("LLM counters not shared for %.0fs: %s", SKIP_AFTER_FAILURE_SECONDS, exc)

    def snapshot(self) -> dict[str, float]:
        """Every counter's value."""
        raw: Any = self.client.hgetall(COUNTERS_KEY)
        return {str(k): float(v) for k, v in raw.items()}


@dataclass
class CallStats:
    """What it took to get one job's model output: attempts, waits and tokens."""

    llm_calls: int = 0
    retries: int = 0
    rate_limited: int = 0
    requeues: int = 0
    limiter_wait_s: float = 0.0
    backoff_sleep_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def merged_into(self, previous: dict[str, Any] | None) -> dict[str, Any]:
        """These stats added to the ones a job recorded on earlier attempts."""
        merged = dict(previous or {})
        for key, value in asdict(self).items():
            total = merged.get(key, 0) + value
            merged[key] = round(total, 6) if isinstance(total, float) else total
        return merged
