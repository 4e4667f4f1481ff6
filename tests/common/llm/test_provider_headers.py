"""Reading the provider's rate-limit headers, retry advice and Go durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from common.llm.provider_headers import (
    RateLimitState,
    parse_go_duration,
    rate_limit_state,
    retry_after_seconds,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1m30.5s", 90.5),
        ("2h", 7200.0),
        ("1h2m3s", 3723.0),
        ("1.574s", 1.574),
        ("0s", 0.0),
        ("250us", 0.00025),
        (" 644ms ", 0.644),
    ],
)
def test_go_durations_are_read_as_seconds(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "5", "1.5", "1x", "s", "-1s", "1s later", "1 s"])
def test_anything_else_is_not_a_go_duration(text: str) -> None:
    assert parse_go_duration(text) is None


TRY_AGAIN = "Rate limit reached for gpt-4o-mini on tokens per min (TPM). Please try again in 3s."


def test_retry_after_ms_wins_over_retry_after_and_the_message() -> None:
    headers = {"retry-after-ms": "250", "retry-after": "7"}

    assert retry_after_seconds(headers, TRY_AGAIN) == pytest.approx(0.25)


def test_retry_after_in_seconds_wins_over_the_message() -> None:
    assert retry_after_seconds({"retry-after": "7"}, TRY_AGAIN) == pytest.approx(7.0)


def test_retry_after_as_an_http_date_is_the_time_until_then() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)

    wait = retry_after_seconds({"retry-after": format_datetime(when, usegmt=True)})

    # The HTTP date drops the fraction of a second.
    assert wait is not None
    assert 28.0 < wait <= 30.0


def test_a_retry_after_date_in_the_past_means_no_wait() -> None:
    when = datetime.now(UTC) - timedelta(minutes=5)

    assert retry_after_seconds({"retry-after": format_datetime(when, usegmt=True)}) == 0.0


def test_negative_header_values_mean_no_wait() -> None:
    assert retry_after_seconds({"retry-after-ms": "-100"}) == 0.0
    assert retry_after_seconds({"retry-after": "-3"}) == 0.0


def test_unreadable_headers_fall_through_to_the_next_source() -> None:
    assert retry_after_seconds({"retry-after-ms": "soon", "retry-after": "4"}) == 4.0
    assert retry_after_seconds({"retry-after": "later"}, TRY_AGAIN) == 3.0


@pytest.mark.parametrize(
    ("message", "seconds"),
    [
        ("Limit 200000, Used 162960, Requested 42288. Please try again in 1.574s. Visit", 1.574),
        ("Please try again in 644ms.", 0.644),
        ("Please try again in 6m0s.", 360.0),
        ("please TRY AGAIN IN 20s", 20.0),
    ],
)
def test_the_message_is_the_last_resort(message: str, seconds: float) -> None:
    assert retry_after_seconds({}, message) == pytest.approx(seconds)


def test_no_advice_at_all_is_none() -> None:
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({}, "Rate limit reached. Please slow down.") is None
    assert retry_after_seconds({"x-request-id": "req_1"}, "try again in a while") is None


def test_real_response_headers_are_matched_whatever_their_case() -> None:
    headers = httpx.Headers({"Retry-After-Ms": "1500", "Retry-After": "9"})

    assert retry_after_seconds(headers) == pytest.approx(1.5)


def test_rate_limit_state_reads_every_header() -> None:
    headers = {
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-limit-tokens": "200000",
        "x-ratelimit-remaining-requests": "499",
        "x-ratelimit-remaining-tokens": "199000",
        "x-ratelimit-reset-requests": "120ms",
        "x-ratelimit-reset-tokens": "6m0s",
    }

    state = rate_limit_state(headers)

    assert state.reset_requests_s == pytest.approx(0.12)
    assert state == RateLimitState(
        limit_requests=500,
        limit_tokens=200_000,
        remaining_requests=499,
        remaining_tokens=199_000,
        reset_requests_s=state.reset_requests_s,
        reset_tokens_s=360.0,
    )


def test_rate_limit_state_leaves_missing_headers_as_none() -> None:
    state = rate_limit_state({"x-ratelimit-remaining-requests": "3", "content-type": "text/plain"})

    assert state == RateLimitState(remaining_requests=3)
    assert rate_limit_state({}) == RateLimitState()


def test_rate_limit_state_ignores_malformed_values() -> None:
    headers = {
        "x-ratelimit-limit-requests": "lots",
        "x-ratelimit-remaining-tokens": "12.5",
        "x-ratelimit-reset-requests": "",
        "x-ratelimit-reset-tokens": "soon",
    }

    assert rate_limit_state(headers) == RateLimitState()
