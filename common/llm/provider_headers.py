"""Reading what an OpenAI-compatible provider says about its rate limits."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_GO_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")
_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_TRY_AGAIN = re.compile(r"try again in\s+((?:\d+(?:\.\d+)?(?:ms|us|µs|ns|h|m|s))+)", re.I)


def parse_go_duration(text: str) -> float | None:
    """Seconds in a Go duration such as `6m0s`, `1.5s` or `20ms`; None if it is not one."""
    text = text.strip()
    parts = _GO_PART.findall(text)
    if not parts or "".join(f"{n}{u}" for n, u in parts) != text:
        return None
    return sum(float(number) * _GO_UNITS[unit] for number, unit in parts)


def retry_after_seconds(headers: Mapping[str, str], message: str = "") -> float | None:
    """The provider's advised wait: `retry-after-ms`, `retry-after`, or "try again in" text."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    if (value := headers.get("retry-after")) is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
                return max(0.0, (when - datetime.now(UTC)).total_seconds())
            except (TypeError, ValueError):
                pass
    if match := _TRY_AGAIN.search(message):
        return parse_go_duration(match.group(1))
    return None


@dataclass(frozen=True)
class RateLimitState:
    """The `x-ratelimit-*` headers of one response."""

    limit_requests: int | None = None
    limit_tokens: int | None = None
    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_requests_s: float | None = None
    reset_tokens_s: float | None = None


def _int(headers: Mapping[str, str], name: str) -> int | None:
    try:
        return int(headers[name])
    except (KeyError, ValueError):
        return None


def _duration(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    return parse_go_duration(value) if value else None


def rate_limit_state(headers: Mapping[str, str]) -> RateLimitState:
    """Parse the `x-ratelimit-*` headers (missing ones are None)."""
    return RateLimitState(
        limit_requests=_int(headers, "x-ratelimit-limit-requests"),
        limit_tokens=_int(headers, "x-ratelimit-limit-tokens"),
        remaining_requests=_int(headers, "x-ratelimit-remaining-requests"),
        remaining_tokens=_int(headers, "x-ratelimit-remaining-tokens"),
        reset_requests_s=_duration(headers, "x-ratelimit-reset-requests"),
        reset_tokens_s=_duration(headers, "x-ratelimit-reset-tokens"),
    )
