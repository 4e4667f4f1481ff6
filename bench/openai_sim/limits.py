"""Provider-style RPM/TPM admission with continuously refilling token buckets."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

RATE_LIMIT_DOCS = "Visit https://platform.openai.com/account/rate-limits to learn more."
_LABELS = {"requests": "requests per min (RPM)", "tokens": "tokens per min (TPM)"}


def estimate_tokens(text: str) -> int:
    """Approximate a text's token count as ceil(len(text) / 4).

    Four characters per token is OpenAI's rule of thumb for English; it avoids
    downloading tokenizer files, and callers only need a stable, monotonic count.
    """
    return math.ceil(len(text) / 4)


def go_duration(seconds: float) -> str:
    """Format a duration like Go's time.Duration.String(), rounded to milliseconds."""
    ms = max(0, round(seconds * 1000))
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, frac = divmod(rest, 1000)
    sec_text = f"{secs}.{frac:03d}".rstrip("0").rstrip(".") if frac else str(secs)
    if hours:
        return f"{hours}h{minutes}m{sec_text}s"
    if minutes:
        return f"{minutes}m{sec_text}s"
    return f"{sec_text}s"


class TokenBucket:
    """A bucket of `capacity` units refilled at capacity/60 units per second."""

    def __init__(self, capacity: int, now: float) -> None:
        self.capacity = capacity
        self.level = float(capacity)
        self._updated = now

    @property
    def rate(self) -> float:
        """Units added back per second."""
        return self.capacity / 60.0

    def refill(self, now: float) -> None:
        """Add the units earned since the last refill, up to capacity."""
        self.level = min(self.capacity, self.level + (now - self._updated) * self.rate)
        self._updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` units are available (0 if they are now)."""
        return max(0.0, (amount - self.level) / self.rate)

    def time_to_full(self) -> float:
        """Seconds until the bucket is full again."""
        return (self.capacity - self.level) / self.rate


@dataclass(frozen=True)
class Rejection:
    """Why a request was refused and how long until it could succeed."""

    kind: str  # "requests" or "tokens"
    limit: int
    used: int
    requested: int
    retry_after_s: float
    too_large: bool = False

    def message(self, model: str, organization: str) -> str:
        """Return the provider's wording for this rejection."""
        label = _LABELS[self.kind]
        if self.too_large:
            return (
                f"Request too large for {model} in organization {organization} on {label}: "
                f"Limit {self.limit}, Requested {self.requested}. The input or output tokens "
                f"must be reduced in order to run successfully. {RATE_LIMIT_DOCS}"
            )
        return (
            f"Rate limit reached for {model} in organization {organization} on {label}: "
            f"Limit {self.limit}, Used {self.used}, Requested {self.requested}. "
            f"Please try again in {go_duration(self.retry_after_s)}. {RATE_LIMIT_DOCS}"
        )


class RateLimiter:
    """Thread-safe RPM and TPM buckets; a request is charged only when both admit it.

    With `charge_rejected`, a request refused for lack of tokens still uses up one unit of
    the request budget, as the provider counts failed requests too (tokens are not charged).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, TokenBucket] = {}

    def reset(self) -> None:
        """Forget all usage; buckets start full again."""
        with self._lock:
            self._buckets.clear()

    def _bucket(self, kind: str, limit: int, now: float) -> TokenBucket | None:
        """Return the refilled bucket for `kind`, rebuilding it when its limit changed."""
        if limit <= 0:
            self._buckets.pop(kind, None)
            return None
        bucket = self._buckets.get(kind)
        if bucket is None or bucket.capacity != limit:
            bucket = self._buckets[kind] = TokenBucket(limit, now)
        bucket.refill(now)
        return bucket

    def admit(
        self, rpm: int, tpm: int, cost: int, charge_rejected: bool = False
    ) -> tuple[Rejection | None, dict[str, str]]:
        """Charge one request and `cost` tokens, or explain the refusal; also return headers."""
        with self._lock:
            now = self._clock()
            requests = self._bucket("requests", rpm, now)
            tokens = self._bucket("tokens", tpm, now)
            rejection = None
            if tokens is not None and cost > tokens.capacity:
                rejection = Rejection("tokens", tpm, 0, cost, 0.0, too_large=True)
            elif requests is not None and requests.level < 1:
                rejection = _rejection("requests", requests, 1)
            elif tokens is not None and tokens.level < cost:
                rejection = _rejection("tokens", tokens, cost)
                if charge_rejected and requests is not None:
                    requests.level -= 1
            else:
                if requests is not None:
                    requests.level -= 1
                if tokens is not None:
                    tokens.level -= cost
            return rejection, self._headers(requests, tokens)

    def headers(self, rpm: int, tpm: int) -> dict[str, str]:
        """Return the x-ratelimit-* headers for the current state without charging."""
        with self._lock:
            now = self._clock()
            return self._headers(
                self._bucket("requests", rpm, now), self._bucket("tokens", tpm, now)
            )

    @staticmethod
    def _headers(requests: TokenBucket | None, tokens: TokenBucket | None) -> dict[str, str]:
        """Build x-ratelimit-* headers; an unlimited dimension sends none."""
        headers: dict[str, str] = {}
        for kind, bucket in (("requests", requests), ("tokens", tokens)):
            if bucket is None:
                continue
            headers[f"x-ratelimit-limit-{kind}"] = str(bucket.capacity)
            headers[f"x-ratelimit-remaining-{kind}"] = str(max(0, math.floor(bucket.level)))
            headers[f"x-ratelimit-reset-{kind}"] = go_duration(bucket.time_to_full())
        return headers


def _rejection(kind: str, bucket: TokenBucket, amount: int) -> Rejection:
    """Describe a refusal by `bucket` of `amount` units."""
    used = math.ceil(bucket.capacity - bucket.level)
    return Rejection(kind, bucket.capacity, used, amount, bucket.wait_for(amount))


def retry_after_headers(seconds: float) -> dict[str, str]:
    """Return the retry-after-ms and retry-after (whole seconds, rounded up) headers."""
    return {
        "retry-after-ms": str(math.ceil(seconds * 1000)),
        "retry-after": str(math.ceil(seconds)),
    }
